// @grin-moe/tensor: tensors, reverse-mode autograd, the CPU reference backend, optimizers,
// seeded random numbers and safetensors I/O. See README.md for the op list and how to add one.
export * from './ops/index.js';
export { Tensor, isTensor } from './core/tensor.js';
export { type DType, type FloatDType, type HostArray, DTYPES, isFloat, itemSize } from './core/dtype.js';
export { type Shape, numel, broadcastShapes, contiguousStrides, formatShape } from './core/shape.js';
export { type Backend, Storage, registerBackend, backendOf, registeredBackends } from './core/backend.js';
export { type Kernel, registerKernel, getKernel, hasKernel, listKernels } from './core/registry.js';
export type { OpAttrs, OpName } from './core/op-types.js';
export { Scope, tidy, liveStorages, liveElements } from './core/memory.js';
export { noGrad, enableGrad, noGradScope, isGradEnabled } from './autograd/mode.js';
export { backward } from './autograd/engine.js';
export { customOp, type CustomContext } from './autograd/custom.js';
export type { GradRule, BackwardContext } from './autograd/node.js';
export { gradRules } from './autograd/rules/index.js';
export * from './optim/index.js';
export * from './ops/random.js';
export {
  Generator,
  type GeneratorState,
  type BlockReservation,
  defaultGenerator,
  manualSeed,
  getRngState,
  setRngState,
  philox4x32,
} from './random/index.js';
export * from './io/index.js';
