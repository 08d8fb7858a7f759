#!/usr/bin/env bash
# Where a training step's GPU time goes: `grin bench train`'s model (tools/device/profile-train-entry.ts)
# under Nsight Systems when it is installed (kernels overlap as they run), else Nsight Compute with
# one metric per kernel (kernels serialised). Prints the kernels grouped by name (count, total ms per
# step, share) and writes the raw report and the table to $OUT. Usage: bash tools/device/profile-train.sh [steps]
# ENTRY=moe profiles `grin bench moe`'s block instead (profile-moe-entry.ts): ENTRY=moe
# bash tools/device/profile-train.sh [steps] [tokens] [grouped implementation]; TAG names the outputs.
# ncu locks the clocks to base and flushes the caches before every kernel by default; NCU_FLAGS adds
# flags (NCU_FLAGS="--clock-control none --cache-control none": the kernels as they run in the step).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/grin-out}
mkdir -p "$out"
steps=${1:-2}
entry=${ENTRY:-train}
tag=${TAG:-$entry}
[ -x /tmp/node ] || { xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node; }
cublas=$(find /usr/local /usr/lib /opt -name 'libcublas.so.13*' 2>/dev/null | head -1)
[ -n "$cublas" ] && export LD_LIBRARY_PATH="$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
NSYS=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys 2>/dev/null | head -1)
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
if [ -n "$NSYS" ]; then
  echo "=== nsys ($NSYS), $steps steps"
  timeout 300 "$NSYS" profile -t cuda --capture-range=cudaProfilerApi --capture-range-end=stop -f true \
    -o "$out/$tag" /tmp/node .device/profile-$entry.mjs "$@" 2>&1 | grep -v "^Collecting\|^Generating" | tail -5
  "$NSYS" stats -q -r cuda_gpu_kern_sum -f csv -o "$out/$tag" "$out/$tag.nsys-rep" > /dev/null 2>&1
  python3 tools/device/summarize-profile.py nsys "$out/${tag}_cuda_gpu_kern_sum.csv" "$steps" | tee "$out/profile-$tag.txt"
elif [ -n "$NCU" ]; then
  echo "=== ncu ($NCU), $steps steps"
  timeout 500 "$NCU" ${NCU_FLAGS:-} --profile-from-start off --metrics gpu__time_duration.sum --csv --print-units base \
    /tmp/node .device/profile-$entry.mjs "$@" > "$out/$tag-ncu.csv" 2> "$out/$tag-ncu.err"
  tail -3 "$out/$tag-ncu.err"
  python3 tools/device/summarize-profile.py ncu "$out/$tag-ncu.csv" "$steps" | tee "$out/profile-$tag.txt"
else
  echo "profile-train: neither nsys nor ncu is installed"; exit 1
fi
