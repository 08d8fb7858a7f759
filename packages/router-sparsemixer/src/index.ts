// @grin-moe/router-sparsemixer: the Router interface and registry, SparseMixer-v2 (GRIN's
// estimator), the GShard top-2 and Switch top-1 baselines, and the load-balancing loss.
// Registration order is the registry's listing order: SparseMixer-v2 first, then the baselines.
// Test: cd packages/router-sparsemixer && npx vitest run src
import './sparsemixer.js';
import './baselines.js';

export * from './balance.js';
export { gshardTop2, switchTop1 } from './baselines.js';
export * from './fused.js';
export * from './reference.js';
export * from './router.js';
export { COIN_THRESHOLD, PARTIAL_FACTOR, sparseMixerV2 } from './sparsemixer.js';
