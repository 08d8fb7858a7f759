// @grin-moe/model-grin: the GRIN / Phi-3.5-MoE (PhimoeForCausalLM) model in TypeScript: config,
// modules, checkpoint load/save (original and transformers v5 naming), generation, tokenizer.
// Test: cd packages/model-grin && npx vitest run src

export * from './checkpoint.js';
export * from './config.js';
export * from './generate.js';
export { initRandom } from './init.js';
export * from './memory.js';
export * from './model.js';
export {
  type AttentionImplementation,
  attention,
  type LayerKvCache,
  usesFusedAttention,
} from './modules/attention.js';
export { type DecoderInputs, decoderLayer } from './modules/decoder.js';
export {
  type ExpertGroups,
  expertMlp,
  groupByExpert,
  type MoeImplementation,
  type MoeOptions,
  moe,
  type RoutingTrace,
} from './modules/moe.js';
export { expertPrefix, layerPrefix, type ParameterMap, parameterShapes } from './modules/names.js';
export { expertDropoutMask, neftuneNoise } from './modules/regularizers.js';
export { stackExpertWeights } from './modules/stack.js';
export * from './tokenizer/index.js';
