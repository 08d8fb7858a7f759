// Device bundle entry (node:test): the model's fused attention on cuda against the eager path
// (packages/model-grin/src/cuda/attention-cases.ts). Built by tools/device/build-bundle.sh into
// .device/model-attention.mjs; run by run-gpu-tests.sh (group model-attention).

import { runGroup } from '../../packages/kernels-cuda/tests/device/node-runner.js';
import { cases } from '../../packages/model-grin/src/cuda/attention-cases.js';

runGroup('model-attention', cases);
