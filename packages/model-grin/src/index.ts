// @grin-moe/model-grin: the GRIN / Phi-3.5-MoE (PhimoeForCausalLM) model in TypeScript: config,
// modules, checkpoint load/save (original and transformers v5 naming), generation, tokenizer.
export * from './config.js';
export * from './model.js';
export { initRandom } from './init.js';
export * from './checkpoint.js';
export * from './generate.js';
export { type LayerKvCache, attention } from './modules/attention.js';
export { type ExpertGroups, expertMlp, groupByExpert, moe, type MoeOptions } from './modules/moe.js';
export { decoderLayer, type DecoderInputs } from './modules/decoder.js';
export { type ParameterMap, parameterShapes } from './modules/names.js';
