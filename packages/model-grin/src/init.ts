// Random initialisation as transformers' PhimoePreTrainedModel._init_weights: Linear and Embedding
// weights (router and experts included) ~ N(0, initializer_range), biases 0, LayerNorm weight 1 and
// bias 0. Draws come from a seeded Generator in checkpoint order, so a seed fixes the model.
// Test: cd packages/model-grin && npx vitest run src/generate src/checkpoint
import { full, type Generator, randn, type Tensor } from '@grin-moe/tensor';
import type { GrinConfig } from './config.js';
import { GrinModel, type ModelDType } from './model.js';
import { parameterShapes } from './modules/names.js';

export function initRandom(
  config: GrinConfig,
  generator: Generator,
  { dtype = 'f32', device = 'cpu' }: { dtype?: ModelDType; device?: string } = {},
): GrinModel {
  const params = new Map<string, Tensor>();
  for (const [name, shape] of parameterShapes(config)) {
    const isNorm = name.includes('layernorm') || name.startsWith('model.norm.');
    let t: Tensor;
    if (isNorm) t = full(shape, name.endsWith('.weight') ? 1 : 0, { dtype, device });
    else if (name.endsWith('.bias')) t = full(shape, 0, { dtype, device });
    else t = randn(shape, { std: config.initializerRange, dtype, device, generator });
    params.set(name, t);
  }
  return new GrinModel(config, params, dtype, device);
}
