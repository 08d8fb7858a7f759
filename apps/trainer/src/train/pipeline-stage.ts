// One pipeline stage of a GrinModel, for --pp: a contiguous run of decoder layers, the embedding on
// the first stage, the final LayerNorm and lm_head on the last. It mirrors GrinModel.forward piece
// by piece (model-grin stays single-device and unchanged), NEFTune and expert dropout included, so
// the stages in order compute what the whole model does; a stage needs only its own parameters.
// Shape legend: B batch, S positions, D hidden size, V vocab.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-stage.test.ts
import {
  decoderLayer,
  type GrinConfig,
  type GrinModel,
  neftuneNoise,
  rotaryTables,
} from '@grin-moe/model-grin';
import type { BalanceStats } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';

export interface StageSlice {
  stage: number;
  stages: number;
  /** Decoder layers [first, end) of this stage. */
  first: number;
  end: number;
}

/** Stage `stage` of `stages`: layers split as evenly as possible, earlier stages taking the extra ones. */
export function stageSlice(layers: number, stages: number, stage: number): StageSlice {
  if (!Number.isInteger(stages) || stages < 1 || stages > layers)
    throw new RangeError(
      `--pp ${stages}: needs 1 to ${layers} stages (one decoder layer at least per stage)`,
    );
  if (!Number.isInteger(stage) || stage < 0 || stage >= stages)
    throw new RangeError(`pipeline stage ${stage} is not one of 0..${stages - 1}`);
  const base = Math.floor(layers / stages);
  const extra = layers % stages;
  const first = stage * base + Math.min(stage, extra);
  return { stage, stages, first, end: first + base + (stage < extra ? 1 : 0) };
}

/** Whether parameter `name` lives on this stage (embedding first, final norm and lm_head last). */
export function stageOwns(slice: StageSlice, name: string): boolean {
  const layer = /^model\.layers\.(\d+)\./.exec(name);
  if (layer) return Number(layer[1]) >= slice.first && Number(layer[1]) < slice.end;
  if (name.startsWith('model.embed_tokens.')) return slice.stage === 0;
  return slice.stage === slice.stages - 1; // model.norm.*, lm_head.*
}

/** What a stage computes with: the whole model, or a map holding only this stage's parameters. */
export type StageModel = Pick<GrinModel, 'config' | 'params' | 'dtype' | 'device'>;

export interface StageForwardOptions {
  training: boolean;
  generator?: T.Generator;
  /** NEFTune noise on the embeddings (first stage, training only), as GrinModel.forward adds it. */
  neftuneAlpha?: number;
  expertDropout?: number;
  /** The last stage's norm and lm_head (default true); a counting pass needs only the routing. */
  head?: boolean;
}

export interface StageOutput {
  /** Hidden states [B,S,D] for the next stage, or logits [B,S,V] on the last stage. */
  out: T.Tensor;
  /** The balance statistics of this stage's layers, in layer order. */
  balance: BalanceStats[];
}

/**
 * Runs this stage on `ids_BS` (the first stage embeds them; later stages take `hidden_BSD` from the
 * previous stage, and still need the ids' shape for the rotary tables).
 */
export function stageForward(
  model: StageModel,
  slice: StageSlice,
  ids_BS: T.Tensor,
  hidden_BSD: T.Tensor | null,
  options: StageForwardOptions,
): StageOutput {
  const config: GrinConfig = model.config;
  const p = model.params;
  const param = (name: string) => {
    const t = p.get(name);
    if (!t) throw new Error(`pipeline stage ${slice.stage}: parameter '${name}' is missing`);
    return t;
  };
  if ((slice.stage === 0) !== (hidden_BSD === null))
    throw new Error(
      `pipeline stage ${slice.stage}: ${slice.stage === 0 ? 'the first stage embeds the ids itself' : 'needs the previous stage’s hidden states'}`,
    );
  return T.tidy(() => {
    const S = ids_BS.shape[1]!;
    const { cos, sin } = rotaryTables(config, 0, S, model.dtype, model.device);
    let x_BSD = hidden_BSD ?? T.embedding(param('model.embed_tokens.weight'), ids_BS);
    if (!hidden_BSD && options.training && options.neftuneAlpha)
      x_BSD = neftuneNoise(x_BSD, options.neftuneAlpha, options.generator);
    const balance: BalanceStats[] = [];
    for (let layer = slice.first; layer < slice.end; layer++) {
      const result = decoderLayer(config, p, layer, x_BSD, {
        cos_SD: cos,
        sin_SD: sin,
        training: options.training,
        generator: options.generator,
        expertDropout: options.expertDropout,
      });
      x_BSD = result.out_BSD;
      balance.push(result.balance);
    }
    if (slice.stage < slice.stages - 1 || options.head === false) return { out: x_BSD, balance };
    const normed_BSD = T.layerNorm(
      x_BSD,
      param('model.norm.weight'),
      param('model.norm.bias'),
      config.rmsNormEps,
    );
    const head = config.tieWordEmbeddings ? param('model.embed_tokens.weight') : param('lm_head.weight');
    return { out: T.linear(normed_BSD, head, p.get('lm_head.bias') ?? null), balance };
  });
}
