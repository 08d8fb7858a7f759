// SparseMixer-v2, GRIN's router gradient estimator, exactly as transformers' `sparsemixer`
// (transformers.models.phimoe.modeling_phimoe); DESIGN.md gives the per-token semantics.
// Per slot: a jitter mask from the ORIGINAL logits against the max of the still-unpicked ones,
// a Gumbel sample of the masked softmax in training (argmax in eval), the weight p_D scaled by the
// Heun third-order coin (forward only), and a hand-written backward g * p_D * (onehot(D) - p).
// Top-k beyond 2 repeats the slot with every earlier pick masked (a documented extension).
// Test: cd packages/router-sparsemixer && npx vitest run
import {
  abs,
  arange,
  argmax,
  cast,
  concat,
  customOp,
  defaultGenerator,
  div,
  eq,
  fullLike,
  gather,
  gt,
  log,
  maskedFill,
  max,
  maximum,
  mul,
  neg,
  noGrad,
  rand,
  randExponential,
  scatterAdd,
  softmax,
  sub,
  type Tensor,
  tidy,
  where,
} from '@grin-moe/tensor';
import {
  checkLogits,
  type RouteOptions,
  type Router,
  type RouterDraws,
  type RouterOutput,
  registerRouter,
} from './router.js';

// transformers builds the coin factor as 0.3333 + 0.6667 * full in float32 (then casts), so the
// partial factor is float32(0.3333) and the full one float32(0.3333) + float32(0.6667) == 1.
export const PARTIAL_FACTOR = Math.fround(0.3333);
export const COIN_THRESHOLD = 0.75;

/** MultiplierProcessor: forward w * factor; backward to the logits only, g * w * (onehot(D) - p). */
const multiplierProcessor = customOp<{
  weight_T1: Tensor;
  expert_T1: Tensor;
  probs_TE: Tensor;
  factor_T1: Tensor;
}>('sparsemixer_multiplier', {
  forward(ctx, _inputs, { weight_T1, expert_T1, probs_TE, factor_T1 }) {
    ctx.save(weight_T1, expert_T1, probs_TE);
    return [mul(weight_T1, factor_T1)];
  },
  backward(ctx, [grad_T1]) {
    const [weight_T1, expert_T1, probs_TE] = ctx.saved as [Tensor, Tensor, Tensor];
    const scaled_T1 = mul(grad_T1!, weight_T1);
    return [scatterAdd(mul(probs_TE, neg(scaled_T1)), -1, expert_T1, scaled_T1)];
  },
});

interface Slot {
  expert_T1: Tensor;
  weight_T1: Tensor;
}

/** One pick: `src_TE` is the logits with earlier picks at -inf; the mask test uses `logits_TE`. */
function routeSlot(
  logits_TE: Tensor,
  src_TE: Tensor,
  eps: number,
  training: boolean,
  draws: { exp_TE: Tensor; u_T1: Tensor } | null,
): Slot {
  const { outside_TE, expert_T1, probs_TE, isTop_T1 } = noGrad(() => {
    const max_T1 = max(src_TE, -1, true);
    // keep_j: (max - z_j) / max(|z_j|, max) <= 2 eps; a 0/0 is NaN, compares false, and is kept.
    const outside_TE = gt(div(sub(max_T1, logits_TE), maximum(abs(logits_TE), max_T1)), 2 * eps);
    const masked_TE = maskedFill(src_TE, outside_TE, Number.NEGATIVE_INFINITY);
    const expert_T1 = draws ? argmax(sub(masked_TE, log(draws.exp_TE)), -1, true) : argmax(src_TE, -1, true);
    const probs_TE = softmax(masked_TE, -1);
    const isTop_T1 = eq(expert_T1, argmax(probs_TE, -1, true));
    return { outside_TE, expert_T1, probs_TE, isTop_T1 };
  });
  if (!training || !draws) {
    // Eval: the weight is p_D of the masked softmax, differentiated as it stands.
    const weight_T1 = gather(
      softmax(maskedFill(src_TE, outside_TE, Number.NEGATIVE_INFINITY), -1),
      -1,
      expert_T1,
    );
    return { expert_T1, weight_T1 };
  }
  const factor_T1 = noGrad(() =>
    where(isTop_T1, 1, where(gt(draws.u_T1, COIN_THRESHOLD), 1, fullLike(draws.u_T1, PARTIAL_FACTOR))),
  );
  const weight_T1 = noGrad(() => gather(probs_TE, -1, expert_T1));
  const [multiplier_T1] = multiplierProcessor([logits_TE], { weight_T1, expert_T1, probs_TE, factor_T1 });
  return { expert_T1, weight_T1: multiplier_T1! };
}

/** Draws for slot k, from the injected record or the generator (Exp [T,E] then U [T,1]). */
function drawsFor(logits_TE: Tensor, k: number, options: RouteOptions): { exp_TE: Tensor; u_T1: Tensor } {
  const [T, E] = logits_TE.shape as [number, number];
  if (options.draws) return injected(options.draws, k, logits_TE, T, E);
  // Draws are f32 (f64 for f64 logits) and then take the logits' dtype (bf16 on cuda), so a seed
  // gives the same stream whatever the dtype; elementwise ops need equal dtypes.
  const drawDType = logits_TE.dtype === 'f64' ? 'f64' : 'f32';
  const generator = options.generator ?? defaultGenerator();
  const exp_TE = randExponential([T, E], { dtype: drawDType, device: logits_TE.device, generator });
  const u_T1 = rand([T, 1], { dtype: drawDType, device: logits_TE.device, generator });
  if (logits_TE.dtype === drawDType) return { exp_TE, u_T1 };
  return { exp_TE: cast(exp_TE, logits_TE.dtype), u_T1: cast(u_T1, logits_TE.dtype) };
}

function injected(
  draws: RouterDraws,
  k: number,
  like: Tensor,
  T: number,
  E: number,
): { exp_TE: Tensor; u_T1: Tensor } {
  const exp = draws.exponential[k];
  const u = draws.uniform[k];
  if (!exp || !u)
    throw new Error(
      `sparsemixer-v2: injected draws lack slot ${k + 1} (have ${draws.exponential.length} Exp and ${draws.uniform.length} U)`,
    );
  const fit = (t: Tensor, shape: number[], what: string) => {
    if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
      throw new RangeError(
        `sparsemixer-v2: injected ${what} for slot ${k + 1} is ${t.describe()}, expected [${shape}]`,
      );
    }
    return t.dtype === like.dtype ? t : cast(t, like.dtype);
  };
  return { exp_TE: fit(exp, [T, E], 'Exp(1) draws'), u_T1: fit(u, [T, 1], 'U(0,1) draws') };
}

export const sparseMixerV2: Router = {
  name: 'sparsemixer-v2',
  defaultTopK: 2,
  description: 'GRIN: Gumbel-sampled picks in a jitter band, Heun third-order router gradient (default)',
  route(logits_TE: Tensor, options: RouteOptions): RouterOutput {
    const topK = options.topK ?? 2;
    checkLogits('sparsemixer-v2', logits_TE, topK);
    const eps = options.jitterEps ?? 0.01;
    if (!(eps >= 0)) throw new RangeError(`sparsemixer-v2: jitterEps must be >= 0, got ${eps}`);
    return tidy(() => {
      const E = logits_TE.shape[1]!;
      const positions_1E = arange(E, { device: logits_TE.device }).reshape([1, E]);
      const slots: Slot[] = [];
      let src_TE = logits_TE;
      for (let k = 0; k < topK; k++) {
        const draws = options.training ? drawsFor(logits_TE, k, options) : null;
        const slot = routeSlot(logits_TE, src_TE, eps, options.training, draws);
        slots.push(slot);
        // Training needs the masked logits only as data; eval differentiates through them.
        const picked_TE = eq(positions_1E, slot.expert_T1);
        const prev_TE = src_TE;
        src_TE = options.training
          ? noGrad(() => maskedFill(prev_TE, picked_TE, Number.NEGATIVE_INFINITY))
          : maskedFill(prev_TE, picked_TE, Number.NEGATIVE_INFINITY);
      }
      return {
        experts_TK: concat(
          slots.map((s) => s.expert_T1),
          1,
        ),
        weights_TK: concat(
          slots.map((s) => s.weight_T1),
          1,
        ),
        probs_TE: softmax(logits_TE, -1),
      };
    });
  },
};

registerRouter(sparseMixerV2);
