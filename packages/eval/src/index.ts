// @grin-moe/eval: evaluation of GRIN MoE models: perplexity, multiple-choice scoring (HellaSwag,
// ARC, MMLU; few-shot; log-likelihood), routing analysis (expert load, category similarity,
// per-token experts), training throughput and the MoE-versus-dense ratio. Every analysis returns
// a plain JSON-able object and, given an output path or run directory, writes it there.
// Test: cd packages/eval && npx vitest run

export { DenseModel, denseParameterShapes, initDense } from './dense.js';
export {
  EvaluationError,
  type JsonlRecord,
  readDocuments,
  readJsonl,
  type TextDocument,
  writeJson,
} from './io.js';
export * from './mc.js';
export {
  buildPrompt,
  detectFormat,
  MC_FORMATS,
  type McFormat,
  type McItem,
  readMcFile,
  sampleShots,
} from './mc-formats.js';
export * from './perplexity.js';
export * from './routing.js';
export * from './throughput.js';
