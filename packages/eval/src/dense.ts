// The dense baseline of the MoE-versus-dense throughput ratio: the same decoder as GrinModel (same
// embedding, attention, LayerNorms, head) but each MoE block replaced by ONE GLU MLP of intermediate
// size K * I, so a token meets the same number of active expert parameters (the router's E x D
// gate aside). Built from model-grin's own attention and expertMlp, so only the FFN differs.
// Shape legend: B batch, S positions, D hidden size, V vocab. Test: npx vitest run src/throughput
import {
  attention,
  expertMlp,
  type GrinConfig,
  type ModelDType,
  type ParameterMap,
  parameterShapes,
  rotaryTables,
} from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';

/** The GrinModel parameters without the MoE blocks, plus model.layers.N.mlp.{w1,w2,w3} of width K*I. */
export function denseParameterShapes(config: GrinConfig): Array<[string, number[]]> {
  const D = config.hiddenSize;
  const width = config.numExpertsPerTok * config.intermediateSize;
  const shapes = parameterShapes(config).filter(([name]) => !name.includes('.block_sparse_moe.'));
  for (let l = 0; l < config.numHiddenLayers; l++) {
    const p = `model.layers.${l}.mlp`;
    shapes.push(
      [`${p}.w1.weight`, [width, D]],
      [`${p}.w2.weight`, [D, width]],
      [`${p}.w3.weight`, [width, D]],
    );
  }
  return shapes;
}

export class DenseModel {
  constructor(
    readonly config: GrinConfig,
    readonly params: ParameterMap,
    readonly device = 'cpu',
  ) {}

  parameters(): T.Tensor[] {
    return [...this.params.values()];
  }

  forward(ids_BS: T.Tensor): { logits_BSV: T.Tensor } {
    const config = this.config;
    const p = this.params;
    const get = (name: string) => p.get(name)!;
    const [B, S] = ids_BS.shape as [number, number];
    return T.tidy(() => {
      const dtype = get('model.embed_tokens.weight').dtype as ModelDType;
      const { cos, sin } = rotaryTables(config, 0, S, dtype, this.device);
      let x_BSD = T.embedding(get('model.embed_tokens.weight'), ids_BS);
      for (let l = 0; l < config.numHiddenLayers; l++) {
        const prefix = `model.layers.${l}`;
        const norm = (name: string, t: T.Tensor) =>
          T.layerNorm(t, get(`${prefix}.${name}.weight`), get(`${prefix}.${name}.bias`), config.rmsNormEps);
        const h_BSD = T.add(
          x_BSD,
          attention(config, p, `${prefix}.self_attn`, norm('input_layernorm', x_BSD), {
            cos_SD: cos,
            sin_SD: sin,
          }),
        );
        const mlp_TD = expertMlp(
          p,
          `${prefix}.mlp`,
          norm('post_attention_layernorm', h_BSD).reshape([B * S, config.hiddenSize]),
        );
        x_BSD = T.add(h_BSD, mlp_TD.reshape([B, S, config.hiddenSize]));
      }
      const normed_BSD = T.layerNorm(
        x_BSD,
        get('model.norm.weight'),
        get('model.norm.bias'),
        config.rmsNormEps,
      );
      const head = config.tieWordEmbeddings ? get('model.embed_tokens.weight') : get('lm_head.weight');
      return { logits_BSV: T.linear(normed_BSD, head, p.get('lm_head.bias') ?? null) };
    });
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
  }
}

/** Random initialisation as initRandom: N(0, initializer_range) weights, zero biases, unit norms. */
export function initDense(
  config: GrinConfig,
  generator: T.Generator,
  { dtype = 'f32', device = 'cpu' }: { dtype?: ModelDType; device?: string } = {},
): DenseModel {
  const params: ParameterMap = new Map();
  for (const [name, shape] of denseParameterShapes(config)) {
    const isNorm = name.includes('layernorm') || name.startsWith('model.norm.');
    let t: T.Tensor;
    if (isNorm) t = T.full(shape, name.endsWith('.weight') ? 1 : 0, { dtype, device });
    else if (name.endsWith('.bias')) t = T.full(shape, 0, { dtype, device });
    else t = T.randn(shape, { std: config.initializerRange, dtype, device, generator });
    t.setRequiresGrad(true);
    t.name = name;
    params.set(name, t);
  }
  return new DenseModel(config, params, device);
}
