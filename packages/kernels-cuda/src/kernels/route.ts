// cuda kernels of the fused routers (csrc/route.cu): `moe_route` and `moe_route_backward`, ops the
// router package declares (packages/router-sparsemixer/src/fused.ts). This package does not import
// the router: it repeats the op declaration below (identical, so the two merge) and registers the
// kernels by name. Test: tests/route.test.ts (GPU, against the registry routers on the CPU).
import { allocate, registerKernel, type Tensor } from '@grin-moe/tensor';
import { addr, dev, native } from '../backend.js';

type RouterName = 'sparsemixer-v2' | 'gshard-top2' | 'switch-top1';
interface MoeRouteAttrs {
  router: RouterName;
  topK: number;
  eps: number;
  training: boolean;
  key: [number, number];
  counter: [number, number];
}
declare module '@grin-moe/tensor' {
  interface OpAttrs {
    moe_route: MoeRouteAttrs;
    moe_route_backward: MoeRouteAttrs;
  }
}

const ROUTER_CODES: Record<RouterName, number> = { 'sparsemixer-v2': 0, 'gshard-top2': 1, 'switch-top1': 2 };

function requireLogits(op: string, logits: Tensor): [number, number] {
  if (logits.dtype !== 'f32' || logits.rank !== 2)
    throw new TypeError(`${op} (cuda): logits must be [T, E] f32, got ${logits.describe()}`);
  return logits.shape as [number, number];
}

registerKernel('moe_route', 'cuda', ([logits], { router, topK, eps, training, key, counter }) => {
  const [T, E] = requireLogits('moe_route', logits!);
  const device = logits!.device;
  const experts = allocate([T, topK], 'i32', device);
  const weights = allocate([T, topK], 'f32', device);
  const probs = allocate([T, E], 'f32', device);
  const counts = allocate([E], 'f32', device);
  native().moeRoute(
    dev(logits!),
    ROUTER_CODES[router],
    addr(logits!),
    addr(experts),
    addr(weights),
    addr(probs),
    addr(counts),
    T,
    E,
    topK,
    eps,
    training ? 1 : 0,
    key[0],
    key[1],
    counter[0],
    counter[1],
  );
  return [experts, weights, probs, counts];
});

registerKernel('moe_route_backward', 'cuda', ([logits, experts, dweights, dprobs], { router, topK, eps }) => {
  const [T, E] = requireLogits('moe_route_backward', logits!);
  const dlogits = allocate([T, E], 'f32', logits!.device);
  const gw = dweights!.dtype === 'f32' ? dweights! : null;
  if (!gw)
    throw new TypeError(
      `moe_route_backward (cuda): weight gradients must be f32, got ${dweights!.describe()}`,
    );
  native().moeRouteBackward(
    dev(logits!),
    ROUTER_CODES[router],
    addr(logits!),
    addr(experts!),
    addr(gw),
    addr(dprobs!),
    addr(dlogits),
    T,
    E,
    topK,
    eps,
  );
  return [dlogits];
});
