// The op API. Importing it loads the CPU backend (the reference, always present) and the
// gradient table.
// Test: cd packages/tensor && npx vitest run src/ops
import '../cpu/index.js';
import '../autograd/rules/index.js';

export * from './attention.js';
export * from './creation.js';
export { allocate, runKernel, runOp } from './dispatch.js';
export * from './elementwise.js';
export * from './indexing.js';
export * from './layout.js';
export * from './linalg.js';
export * from './moe.js';
export * from './nn.js';
export * from './reduce.js';
