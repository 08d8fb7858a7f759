#!/usr/bin/env bash
# Where a training step's GPU time goes: `grin bench train`'s model (tools/device/profile-train-entry.ts)
# under Nsight Systems when it is installed (kernels overlap as they run), else Nsight Compute with
# one metric per kernel (kernels serialised). Prints the kernels grouped by name (count, total ms per
# step, share) and writes the raw report and the table to $OUT. Usage: bash tools/device/profile-train.sh [steps]
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/grin-out}
mkdir -p "$out"
steps=${1:-2}
[ -x /tmp/node ] || { xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node; }
cublas=$(find /usr/local /usr/lib /opt -name 'libcublas.so.13*' 2>/dev/null | head -1)
[ -n "$cublas" ] && export LD_LIBRARY_PATH="$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
NSYS=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys 2>/dev/null | head -1)
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
if [ -n "$NSYS" ]; then
  echo "=== nsys ($NSYS), $steps steps"
  timeout 300 "$NSYS" profile -t cuda --capture-range=cudaProfilerApi --capture-range-end=stop -f true \
    -o "$out/train" /tmp/node .device/profile-train.mjs "$steps" 2>&1 | grep -v "^Collecting\|^Generating" | tail -5
  "$NSYS" stats -q -r cuda_gpu_kern_sum -f csv -o "$out/train" "$out/train.nsys-rep" > /dev/null 2>&1
  python3 tools/device/summarize-profile.py nsys "$out/train_cuda_gpu_kern_sum.csv" "$steps" | tee "$out/profile-train.txt"
elif [ -n "$NCU" ]; then
  echo "=== ncu ($NCU), $steps steps"
  timeout 500 "$NCU" --profile-from-start off --metrics gpu__time_duration.sum --csv --print-units base \
    /tmp/node .device/profile-train.mjs "$steps" > "$out/train-ncu.csv" 2> "$out/train-ncu.err"
  tail -3 "$out/train-ncu.err"
  python3 tools/device/summarize-profile.py ncu "$out/train-ncu.csv" "$steps" | tee "$out/profile-train.txt"
else
  echo "profile-train: neither nsys nor ncu is installed"; exit 1
fi
