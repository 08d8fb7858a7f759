// Fused routing: one device kernel per direction for the built-in routers (SparseMixer-v2, GShard
// top-k, Switch), declared here as the op `moe_route` / `moe_route_backward` by declaration merging
// into the tensor package's op table, so the core knows no router. A backend registers kernels under
// these names (kernels-cuda does); where none is registered, or for a fork's own router, routing
// runs through the registry's router and generic ops, which stay the reference the kernels are
// tested against. The training draws come from the generator's stream in the reference's order.
// Test: packages/kernels-cuda tests/cases/route.ts (GPU, against the registry routers).
import {
  backendOf,
  blocksFor,
  customOp,
  defaultGenerator,
  type Generator,
  hasKernel,
  runKernel,
  type Tensor,
  zeros,
} from '@grin-moe/tensor';
import { checkLogits } from './router.js';

/** The built-in routers that have a fused form, by registry name. */
export const FUSED_ROUTERS = ['sparsemixer-v2', 'gshard-top2', 'switch-top1'] as const;
export type FusedRouterName = (typeof FUSED_ROUTERS)[number];

export interface MoeRouteAttrs {
  router: FusedRouterName;
  topK: number;
  /** SparseMixer's jitter band (router_jitter_noise); ignored by the others. */
  eps: number;
  training: boolean;
  /** Philox reservation for SparseMixer-v2's training draws ([0, 0] when none are drawn). */
  key: [number, number];
  counter: [number, number];
}

declare module '@grin-moe/tensor' {
  interface OpAttrs {
    /** [logits_TE f32] -> [experts_TK i32, weights_TK f32, probs_TE f32 (full softmax), counts_E f32]. */
    moe_route: MoeRouteAttrs;
    /** [logits_TE, experts_TK, dweights_TK, dprobs_TE] -> [dlogits_TE]. */
    moe_route_backward: MoeRouteAttrs;
  }
}

export interface FusedRouting {
  experts_TK: Tensor;
  weights_TK: Tensor;
  probs_TE: Tensor;
  /** Picks per expert [E] (f32), counted in the same pass. */
  counts_E: Tensor;
}

/** Whether routing by `router` on `device` can take the fused kernel. */
export function hasFusedRouting(router: string, device: string): router is FusedRouterName {
  return (
    (FUSED_ROUTERS as readonly string[]).includes(router) && hasKernel('moe_route', backendOf(device).name)
  );
}

const routeOp = customOp<MoeRouteAttrs>('moe_route', {
  forward(ctx, [logits_TE], attrs) {
    const outputs = runKernel('moe_route', logits_TE!.device, [logits_TE!], attrs);
    ctx.save(logits_TE!, outputs[0]!);
    ctx.data.attrs = attrs;
    return outputs;
  },
  backward(ctx, [, dweights_TK, dprobs_TE]) {
    const [logits_TE, experts_TK] = ctx.saved as [Tensor, Tensor];
    const [T, E] = logits_TE.shape as [number, number];
    const K = experts_TK.shape[1]!;
    const zero = (shape: number[]) => zeros(shape, { dtype: 'f32', device: logits_TE.device });
    const inputs = [logits_TE, experts_TK, dweights_TK ?? zero([T, K]), dprobs_TE ?? zero([T, E])];
    const [dlogits_TE] = runKernel(
      'moe_route_backward',
      logits_TE.device,
      inputs,
      ctx.data.attrs as MoeRouteAttrs,
    );
    return [dlogits_TE];
  },
  nondifferentiableOutputs: [0, 3],
});

/**
 * Routes f32 logits [T, E] with the fused kernel of `router`: what getRouter(router).route gives
 * (same picks, weights and gradients for the same generator state), plus the balance counts.
 */
export function routeFused(
  router: FusedRouterName,
  logits_TE: Tensor,
  options: { training: boolean; topK: number; jitterEps: number; generator?: Generator },
): FusedRouting {
  checkLogits(router, logits_TE, options.topK);
  if (logits_TE.dtype !== 'f32')
    throw new TypeError(`routeFused: logits must be f32, got ${logits_TE.describe()}`);
  const [T, E] = logits_TE.shape as [number, number];
  const drawing = router === 'sparsemixer-v2' && options.training;
  // SparseMixer-v2 draws, per slot, Exp [T, E] then U [T, 1]: the blocks the reference consumes
  // (tensor's blocksFor is the Generator's own words-per-value table).
  const perSlot = blocksFor('exponential', 'f32', T * E) + blocksFor('uniform', 'f32', T);
  const blocks = drawing ? options.topK * perSlot : 0;
  const reservation = drawing
    ? (options.generator ?? defaultGenerator()).reserveBlocks(blocks)
    : { key: [0, 0] as [number, number], counter: [0, 0] as [number, number] };
  const [experts_TK, weights_TK, probs_TE, counts_E] = routeOp([logits_TE], {
    router,
    topK: options.topK,
    eps: options.jitterEps,
    training: options.training,
    key: reservation.key,
    counter: reservation.counter,
  }) as [Tensor, Tensor, Tensor, Tensor];
  return { experts_TK, weights_TK, probs_TE, counts_E };
}
