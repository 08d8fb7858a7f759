#!/usr/bin/env bash
# Profiles the tensor-core attention kernels (attention_tc.cu) under Nsight Compute on the device:
# one launch of each, from the dev harness's timing loop (GRIN's window shape), with the speed-of-
# light summary, occupancy and the per-reason stall counts. Usage: bash tools/device/ncu-attention.sh
cd "$(dirname "$0")/../.."
[ -x /tmp/node ] || { xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node; }
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
[ -n "$NCU" ] || { echo "ncu not found"; exit 1; }
cublas=$(find /usr/local /usr/lib /opt -name 'libcublas.so.13*' 2>/dev/null | head -1)
[ -n "$cublas" ] && export LD_LIBRARY_PATH="$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for k in ${KERNELS:-forwardKernel backwardKvKernel backwardQKernel}; do
  echo "=== $k"
  timeout 120 "$NCU" -k "regex:$k" --launch-skip 12 -c 1 --section SpeedOfLight --section Occupancy \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
    /tmp/node .device/dev-attention.mjs 2>&1 | grep -E "Duration|Throughput|Occupancy|stalled|Registers" |
    awk '$NF+0 > 0.05 || /Duration|Throughput|Occupancy/'
done
