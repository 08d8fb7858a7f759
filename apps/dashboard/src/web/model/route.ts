// Routes a token sequence through a GRIN checkpoint in eval mode and records, per token and layer,
// the experts the router picked and their weights: model-grin's own GrinModel.forward with
// `trace: true` (no second copy of the decoder loop), on the page's device. The weights come from
// @grin-moe/tensor's in-memory safetensors reader. Shape legend: T tokens, K picks.
// Test: cd apps/dashboard && npx vitest run src/web/model
import { GrinModel, parameterShapes, parseConfig } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';

export interface RoutedToken {
  id: number;
  /** [L][K] expert ids and weights. */
  experts: number[][];
  weights: number[][];
}

/** Parameters on `device`, checked against the config's shapes (original PhiMoE naming). */
export function buildModel(
  configJson: unknown,
  weights: Map<string, T.InMemoryTensor>,
  device = 'cpu',
  source = 'model.safetensors',
): GrinModel {
  const config = parseConfig(configJson);
  const params = new Map<string, T.Tensor>();
  for (const [name, shape] of parameterShapes(config)) {
    const host = weights.get(name);
    if (!host)
      throw new Error(
        `${source}: parameter '${name}' [${shape}] is missing (original PhiMoE naming expected)`,
      );
    if (host.shape.join() !== shape.join())
      throw new Error(`${source}: '${name}' is [${host.shape}], expected [${shape}]`);
    if (!(host.data instanceof Float32Array))
      throw new Error(`${source}: '${name}' is ${host.dtype}; the page reads F32, F16 and BF16 weights`);
    params.set(name, T.tensor(host.data, { shape, dtype: 'f32', device }));
  }
  return new GrinModel(config, params, 'f32', device).eval();
}

export function routeTokens(model: GrinModel, ids: number[]): RoutedToken[] {
  if (ids.length === 0) return [];
  const tokens: RoutedToken[] = ids.map((id) => ({ id, experts: [], weights: [] }));
  T.noGrad(() =>
    T.tidy(() => {
      const ids_BS = T.tensor(Int32Array.from(ids), {
        shape: [1, ids.length],
        dtype: 'i32',
        device: model.device,
      });
      // The per-expert loop: its matmuls are what the 'webgl' device runs on the GPU.
      const { routing } = model.forward(ids_BS, { training: false, trace: true, moeImplementation: 'loop' });
      for (const layer of routing!) {
        const experts = layer.experts_TK.toArray() as Int32Array;
        const weights = layer.weights_TK.toArray() as Float32Array;
        const K = layer.experts_TK.shape[1]!;
        tokens.forEach((token, t) => {
          token.experts.push(Array.from(experts.subarray(t * K, (t + 1) * K)));
          token.weights.push(Array.from(weights.subarray(t * K, (t + 1) * K)));
        });
      }
    }),
  );
  return tokens;
}

export function disposeModel(model: GrinModel): void {
  model.dispose();
}
