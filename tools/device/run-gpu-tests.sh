#!/usr/bin/env bash
# The one device command (run with carry [".device"], after tools/device/build-bundle.sh here):
# unpacks Node, runs every GPU test bundle (node:test, cuda vs the CPU reference), grin train's
# loss curve on cuda vs cpu (train-parity), then our bench and PyTorch's on the same GPU, and prints
# a summary with ratios. Log: $OUT/gpu-tests.log. GROUPS_TO_RUN, SKIP_TRAIN=1, SKIP_BENCH=1 narrow it;
# DEV="layer-norm softmax cross-entropy attention elementwise reduce matmul rope indexing adamw" also
# runs those dev/ harnesses (validate + time; .device/dev-NAME.mjs).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/grin-out}
mkdir -p "$out"
log="$out/gpu-tests.log"
: > "$log"
xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node
echo "node $(/tmp/node --version); $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)" | tee -a "$log"
# cuBLAS: the addon also searches the usual places itself; this helps it find a pip-installed one.
cublas=$(find /usr/local /usr/lib /opt -name 'libcublas.so.13*' 2>/dev/null | head -1)
[ -n "$cublas" ] && export LD_LIBRARY_PATH="$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "libcublas: ${cublas:-not found by find}" | tee -a "$log"

groups=${GROUPS_TO_RUN:-"layout elementwise reduce matmul nn indexing optim attention random moe model-moe model-attention"}
for g in $groups; do
  echo "=== $g" | tee -a "$log"
  timeout 150 /tmp/node ".device/$g.mjs" >> "$log" 2>&1
  echo "EXIT $g $?" >> "$log"
done
if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  # grin train: 20 steps on cpu, cuda f32 and cuda bf16 with one seed; PASS/FAIL + max loss difference
  echo "=== train-parity" | tee -a "$log"
  timeout 300 /tmp/node .device/train-parity.mjs 20 2>&1 | tee -a "$log"
  echo "EXIT train-parity ${PIPESTATUS[0]}" >> "$log"
fi
for h in ${DEV:-}; do
  echo "=== dev-$h" | tee -a "$log"
  timeout 150 /tmp/node ".device/dev-$h.mjs" 2>&1 | tee -a "$log"
  echo "EXIT dev-$h ${PIPESTATUS[0]}" >> "$log"
done
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  echo "=== bench" | tee -a "$log"
  timeout 90 /tmp/node .device/bench.mjs >> "$log" 2>&1
  PYTHONUNBUFFERED=1 timeout 90 python3 tools/device/torch_bench.py >> "$log" 2>&1
fi
/tmp/node tools/device/summarize.mjs "$log"
