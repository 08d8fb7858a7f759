#!/usr/bin/env bash
# The GPU benches on the device machine (carry [".device"], after tools/device/build-bundle.sh here):
# `grin bench gemm|attention --json` through the bundled CLI with /tmp/node; each bench runs the
# PyTorch side (torch_bench.py --suite NAME) itself, so every ratio comes from one run. Prints one
# JSON object per bench (DESIGN.md's form) and writes each to $OUT/bench-NAME.json.
# Usage: [BENCH_TIMEOUT=seconds (240)] bash tools/device/run-bench.sh [gemm] [attention] [moe] [train]
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/grin-out}
mkdir -p "$out"
[ -x /tmp/node ] || { xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node; }
cublas=$(find /usr/local /usr/lib /opt -name 'libcublas.so.13*' 2>/dev/null | head -1)
[ -n "$cublas" ] && export LD_LIBRARY_PATH="$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
for bench in ${@:-gemm attention}; do
  echo "=== grin bench $bench --json"
  timeout "${BENCH_TIMEOUT:-240}" /tmp/node .device/grin-bench.mjs "$bench" --json > "$out/bench-$bench.json" 2> "$out/bench-$bench.err"
  code=$?
  cat "$out/bench-$bench.json"
  [ $code -eq 0 ] || { echo "bench $bench: exit $code"; tail -20 "$out/bench-$bench.err"; status=1; }
done
exit $status
