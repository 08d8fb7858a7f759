// @grin-moe/tensor: tensors, reverse-mode autograd, the CPU reference backend, optimizers,
// seeded random numbers and safetensors I/O. See README.md for the op list and how to add one.
// Test: cd packages/tensor && npx vitest run src

export { type CustomContext, customOp } from './autograd/custom.js';
export { backward } from './autograd/engine.js';
export { enableGrad, isGradEnabled, noGrad, noGradScope } from './autograd/mode.js';
export type { BackwardContext, GradRule } from './autograd/node.js';
export { gradRules } from './autograd/rules/index.js';
export { type Backend, backendOf, registerBackend, registeredBackends, Storage } from './core/backend.js';
export { DTYPES, type DType, type FloatDType, type HostArray, isFloat, itemSize } from './core/dtype.js';
export { liveElements, liveStorages, persist, Scope, tidy } from './core/memory.js';
export type { OpAttrs, OpName } from './core/op-types.js';
export { getKernel, hasKernel, type Kernel, listKernels, registerKernel } from './core/registry.js';
export { broadcastShapes, contiguousStrides, formatShape, numel, type Shape } from './core/shape.js';
export { isTensor, Tensor } from './core/tensor.js';
export { broadcastStrides } from './cpu/backend.js';
export { gemmBatchedF32, gemmF32, gemmRef, gemmThreads, setGemmThreads } from './cpu/gemm/index.js';
export { mergeLayout } from './cpu/strided.js';
export * from './io/index.js';
export { type CopyInto, concatByCopies, sliceScatterByCopies } from './ops/compose.js';
export * from './ops/index.js';
export * from './ops/random.js';
export * from './optim/index.js';
export {
  type BlockReservation,
  defaultGenerator,
  Generator,
  type GeneratorState,
  getRngState,
  manualSeed,
  philox4x32,
  setRngState,
} from './random/index.js';
