export { AdamW, type AdamWOptions, Optimizer, type OptimizerState, SGD, type SGDOptions } from './optimizer.js';
export { clipGradNorm } from './clip.js';
export { type Schedule, type WarmupCosineOptions, constant, warmupCosine, warmupLinear } from './schedule.js';
