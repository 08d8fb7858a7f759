// Routes a token sequence through a GRIN checkpoint in eval mode and records, per token and layer,
// the experts the router picked and their weights. The same layer loop as GrinModel.forward
// (embedding -> attention -> MoE per layer), built from model-grin's browser-safe modules, with the
// gate logits routed once more on the side to record the picks (eval routing is deterministic).
// Shape legend: S positions, D hidden, E experts, K picks. Test: npx vitest run src/web/model
import {
  attention,
  type GrinConfig,
  moe,
  parameterShapes,
  parseConfig,
  rotaryTables,
} from '@grin-moe/model-grin';
import { getRouter } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import type { HostTensor } from './safetensors.js';

export interface RoutedToken {
  id: number;
  /** [L][K] expert ids and weights. */
  experts: number[][];
  weights: number[][];
}

export interface LoadedModel {
  config: GrinConfig;
  params: Map<string, T.Tensor>;
  device: string;
}

/** Parameters on `device`, checked against the config's shapes (original PhiMoE naming). */
export function buildModel(
  configJson: unknown,
  weights: Map<string, HostTensor>,
  device = 'cpu',
): LoadedModel {
  const config = parseConfig(configJson);
  const params = new Map<string, T.Tensor>();
  for (const [name, shape] of parameterShapes(config)) {
    const host = weights.get(name);
    if (!host)
      throw new Error(
        `model.safetensors: parameter '${name}' [${shape}] is missing (original PhiMoE naming expected)`,
      );
    if (host.shape.join() !== shape.join())
      throw new Error(`model.safetensors: '${name}' is [${host.shape}], expected [${shape}]`);
    params.set(name, T.tensor(host.data, { shape, dtype: 'f32', device }));
  }
  return { config, params, device };
}

export function routeTokens(model: LoadedModel, ids: number[]): RoutedToken[] {
  const { config, params, device } = model;
  const S = ids.length;
  if (S === 0) return [];
  const tokens: RoutedToken[] = ids.map((id) => ({ id, experts: [], weights: [] }));
  const p = (name: string) => params.get(name)!;
  const router = getRouter(config.router);
  T.noGrad(() =>
    T.tidy(() => {
      const { cos, sin } = rotaryTables(config, 0, S, 'f32', device);
      const ids_BS = T.tensor(Int32Array.from(ids), { shape: [1, S], dtype: 'i32', device });
      let x_BSD = T.embedding(p('model.embed_tokens.weight'), ids_BS);
      for (let layer = 0; layer < config.numHiddenLayers; layer++) {
        const prefix = `model.layers.${layer}`;
        const norm = (name: string, t: T.Tensor) =>
          T.layerNorm(t, p(`${prefix}.${name}.weight`), p(`${prefix}.${name}.bias`), config.rmsNormEps);
        const attended = attention(config, params, `${prefix}.self_attn`, norm('input_layernorm', x_BSD), {
          cos_SD: cos,
          sin_SD: sin,
        });
        const h_BSD = T.add(x_BSD, attended);
        const normed_BSD = norm('post_attention_layernorm', h_BSD);
        const logits_SE = T.linear(
          normed_BSD.reshape([S, config.hiddenSize]),
          p(`${prefix}.block_sparse_moe.gate.weight`),
        );
        const picked = router.route(logits_SE, {
          training: false,
          jitterEps: config.routerJitterNoise,
          topK: config.numExpertsPerTok,
        });
        const experts = picked.experts_TK.toArray() as Int32Array;
        const weights = picked.weights_TK.toArray() as Float32Array;
        const K = picked.experts_TK.shape[1]!;
        tokens.forEach((token, s) => {
          token.experts.push(Array.from(experts.subarray(s * K, (s + 1) * K)));
          token.weights.push(Array.from(weights.subarray(s * K, (s + 1) * K)));
        });
        const { out_BSD } = moe(config, params, layer, normed_BSD, { training: false });
        x_BSD = T.add(h_BSD, out_BSD);
      }
    }),
  );
  return tokens;
}

export function disposeModel(model: LoadedModel): void {
  for (const t of model.params.values()) t.dispose();
}
