// @grin-moe/router-sparsemixer: the Router interface and registry, SparseMixer-v2 (GRIN's
// estimator), the GShard top-2 and Switch top-1 baselines, and the load-balancing loss.
export * from './router.js';
export { sparseMixerV2, PARTIAL_FACTOR, COIN_THRESHOLD } from './sparsemixer.js';
export { gshardTop2, switchTop1 } from './baselines.js';
export * from './balance.js';
export * from './reference.js';
