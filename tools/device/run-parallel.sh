#!/usr/bin/env bash
# The `nccl` process group on the device machine (carry [".device"], after tools/device/build-bundle.sh
# here): a world-size-1 group through the addon, every collective checked, then all-reduce at 1-256 MiB
# timed next to torch.distributed (nccl) in the same run. libnccl.so.2 is found here (the system's,
# else the one beside PyTorch) and passed as GRIN_NCCL_PATH. Prints one JSON object and writes it to
# $OUT/parallel-nccl.json. Usage: bash tools/device/run-parallel.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/grin-out}
mkdir -p "$out"
[ -x /tmp/node ] || { xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node; }
nccl=$(python3 -c 'import glob, os, nvidia.nccl as n; print(sorted(glob.glob(os.path.join(list(n.__path__)[0], "lib", "libnccl.so*")))[0])' 2>/dev/null \
  || find /usr/lib /usr/local /opt -name 'libnccl.so.2*' 2>/dev/null | head -1)
[ -n "$nccl" ] && export GRIN_NCCL_PATH="$nccl"
cublas=$(find /usr/local /usr/lib /opt -name 'libcublas.so.13*' 2>/dev/null | head -1)
[ -n "$cublas" ] && export LD_LIBRARY_PATH="$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "=== nccl group, world size 1 (GRIN_NCCL_PATH=${GRIN_NCCL_PATH:-unset})"
timeout 300 /tmp/node .device/parallel.mjs > "$out/parallel-nccl.json" 2> "$out/parallel-nccl.err"
code=$?
cat "$out/parallel-nccl.err" "$out/parallel-nccl.json"
[ $code -eq 0 ] || echo "run-parallel: exit $code"
exit $code
