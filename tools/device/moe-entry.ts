// Device bundle entry (node:test): the MoE block and fused-router checks of model-grin
// (packages/model-grin/src/cuda/moe-cases.ts). Built by tools/device/build-bundle.sh into
// .device/model-moe.mjs; run by run-gpu-tests.sh (group model-moe).

import { runGroup } from '../../packages/kernels-cuda/tests/device/node-runner.js';
import { cases } from '../../packages/model-grin/src/cuda/moe-cases.js';

runGroup('model-moe', cases);
