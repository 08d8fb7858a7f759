// The op API. Importing it loads the CPU backend (the reference, always present) and the
// gradient table.
import '../cpu/index.js';
import '../autograd/rules/index.js';

export * from './creation.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './layout.js';
export * from './linalg.js';
export * from './nn.js';
export * from './indexing.js';
export * from './attention.js';
export { runOp, runKernel, allocate } from './dispatch.js';
