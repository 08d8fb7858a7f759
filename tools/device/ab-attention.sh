#!/usr/bin/env bash
# A/B timing of attention builds on the device, in one call: each folder .device/<name>/ holds a
# grin_cuda.node (or grin_cuda.node.xz) built from a variant of csrc; the dev harness
# (dev/attention) runs against each in turn, twice, interleaved, so clock drift hits all alike.
# Usage: bash tools/device/ab-attention.sh base v1 v2   (NCU=1: also profile each forward kernel)
# HARNESS=grouped ARGS="2048 8192" times another dev harness (.device/dev-NAME.mjs) the same way;
# ROUNDS=0 NCU=1 KERNEL=regex only profiles.
cd "$(dirname "$0")/../.."
[ -x /tmp/node ] || { xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node; }
cublas=$(find /usr/local /usr/lib /opt -name 'libcublas.so.13*' 2>/dev/null | head -1)
[ -n "$cublas" ] && export LD_LIBRARY_PATH="$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for v in "$@"; do
  [ -f ".device/$v/grin_cuda.node.xz" ] && xz -dc ".device/$v/grin_cuda.node.xz" > ".device/$v/grin_cuda.node"
  cp ".device/dev-${HARNESS:-attention}.mjs" ".device/$v/"
done
for round in $(seq 1 "${ROUNDS:-2}"); do
  for v in "$@"; do
    echo "=== $v (round $round)"
    if [ -n "${HARNESS:-}" ]; then
      timeout 200 /tmp/node ".device/$v/dev-$HARNESS.mjs" ${ARGS:-} 2>&1
    else
      timeout 200 /tmp/node ".device/$v/dev-attention.mjs" mma 2>&1 | grep -E "validate mma|^mma" | grep -v '"D":64'
    fi
  done
done
if [ -n "$NCU" ]; then
  NCU_BIN=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
  for v in "$@"; do
    echo "=== ncu $v"
    timeout 150 "$NCU_BIN" -k "regex:${KERNEL:-forwardWgmmaKernel}" --launch-skip 12 -c 1 --section SpeedOfLight \
      --section Occupancy --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats \
      --section LaunchStats --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
      /tmp/node ".device/$v/dev-${HARNESS:-attention}.mjs" ${ARGS:-mma} 2>&1 | grep -vE "^==PROF==|^ *-+ *$|^\s*$" |
      awk '!/stalled/ || $NF+0 > 0.05' | grep -vE "OPT|INF|^    [a-z].*\.$" | head -120
  done
fi
