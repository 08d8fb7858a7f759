// Test: cd packages/tensor && npx vitest run src/optim
export { clipGradNorm, gradNormScale } from './clip.js';
export {
  AdamW,
  type AdamWOptions,
  Optimizer,
  type OptimizerState,
  SGD,
  type SGDOptions,
} from './optimizer.js';
export { constant, type Schedule, type WarmupCosineOptions, warmupCosine, warmupLinear } from './schedule.js';
