// GPU checks of the MoE block (framework-free, shared by moe.cuda.test.ts and the device bundle
// tools/device/moe-entry.ts): the fused routers on cuda against the registry routers on the CPU
// from one seed (same picks, counts and generator state; weights, probabilities and logit gradients
// within f32 rounding), and the grouped block on cuda against the loop block (the reference): f32
// cuda vs the CPU, outputs and every gradient; bf16 cuda grouped vs bf16 cuda loop.
// Test: cd packages/model-grin && npx vitest run src/cuda
import {
  balanceStats,
  FUSED_ROUTERS,
  type FusedRouterName,
  getRouter,
  registerRouter,
  routeFused,
} from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { parseConfig } from '../config.js';
import { initRandom } from '../init.js';
import { type MoeImplementation, moe } from '../modules/moe.js';
import { stackExpertWeights } from '../modules/stack.js';

export interface Case {
  name: string;
  run(): string;
}

const values = (t: T.Tensor) =>
  t.dtype === 'bf16'
    ? T.bf16BitsToF32Array(t.toArray() as Uint16Array)
    : Array.from(t.toArray() as ArrayLike<number>);

/**
 * expectAllClose on host values with atol taken relative to the reference's largest magnitude
 * (f32 GEMMs sum In products in another order than the CPU's f64 loop: the error follows the
 * scale of the row, not of one small element). Returns "max abs, max rel".
 */
function close(label: string, actual: T.Tensor, expected: T.Tensor, atol: number, rtol: number): string {
  const a = Float64Array.from(values(actual));
  const e = Float64Array.from(values(expected));
  const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
  expectAllClose(a, e, { atol: atol * scale, rtol }, label);
  let abs = 0;
  let rel = 0;
  a.forEach((v, i) => {
    const d = Math.abs(v - e[i]!);
    abs = Math.max(abs, d);
    if (d > 0) rel = Math.max(rel, d / Math.max(Math.abs(e[i]!), 1e-30));
  });
  return `${label}: max abs ${abs.toExponential(2)}, rel ${rel.toExponential(2)}`;
}

function same(label: string, actual: T.Tensor, expected: T.Tensor): void {
  const a = values(actual);
  const e = values(expected);
  const differ = Array.from(a).findIndex((v, i) => v !== e[i]);
  if (a.length !== e.length || differ >= 0)
    throw new Error(`${label}: differs from the reference at ${differ} (${a[differ]} vs ${e[differ]})`);
}

/** Logits with exact ties (column 5 copies column 3 in every 7th row) to pin the tie-breaking. */
function logits(T_: number, E: number, seed: number): Float32Array {
  const data = new T.Generator(seed).normal(T_ * E, 'f32', 0, 2);
  for (let t = 0; t < T_; t += 7) data[t * E + 5] = data[t * E + 3]!;
  return data;
}

function routeCase(
  router: FusedRouterName,
  training: boolean,
  T_: number,
  E: number,
  bf16Logits = false,
): Case {
  const K = router === 'switch-top1' ? 1 : 2;
  return {
    name: `moe_route ${router}${training ? ' training' : ' eval'} T=${T_} E=${E}${bf16Logits ? ' (bf16-valued logits)' : ''}: picks, counts, weights, d logits vs the registry router`,
    run: () =>
      T.tidy(() => {
        const raw = logits(T_, E, 31);
        // bf16 gate outputs cast to f32: coarse values, so ratios land on the jitter threshold more often
        const data = bf16Logits ? T.bf16BitsToF32Array(T.f32ArrayToBf16Bits(raw)) : raw;
        const zc = T.tensor(data, { shape: [T_, E], device: 'cuda', requiresGrad: true });
        const zp = T.tensor(data, { shape: [T_, E], requiresGrad: true });
        const options = { training, topK: K, jitterEps: 0.01 };
        const gc = new T.Generator(99);
        const gp = new T.Generator(99);
        const fused = routeFused(router, zc, { ...options, generator: gc });
        const ref = getRouter(router).route(zp, { ...options, generator: gp });
        same('experts', fused.experts_TK, ref.experts_TK);
        same('counts', fused.counts_E, balanceStats(ref.experts_TK, ref.probs_TE).counts_E);
        if (gc.counter !== gp.counter)
          throw new Error(`generator at ${gc.counter}, reference at ${gp.counter}`);
        const notes = [
          close('weights', fused.weights_TK, ref.weights_TK, 1e-7, 1e-6),
          close('probs', fused.probs_TE, ref.probs_TE, 1e-7, 1e-6),
        ];
        const upW = new T.Generator(5).normal(T_ * K, 'f32');
        const upP = new T.Generator(6).normal(T_ * E, 'f32');
        const loss = (w: T.Tensor, p: T.Tensor, device: string) =>
          T.add(
            T.sum(T.mul(w, T.tensor(upW, { shape: [T_, K], device }))),
            T.sum(T.mul(p, T.tensor(upP, { shape: [T_, E], device }))),
          );
        loss(fused.weights_TK, fused.probs_TE, 'cuda').backward();
        loss(ref.weights_TK, ref.probs_TE, 'cpu').backward();
        notes.push(close('d logits', zc.grad!, zp.grad!, 1e-6, 1e-5));
        return notes.join('; ');
      }),
  };
}

const blockConfig = (router: string, hidden: number, experts: number, topK: number) => ({
  ...parseConfig({
    vocab_size: 8,
    hidden_size: 16,
    intermediate_size: 48,
    num_hidden_layers: 1,
    num_attention_heads: 1,
    num_key_value_heads: 1,
    num_local_experts: experts,
    num_experts_per_tok: topK,
    initializer_range: 0.2,
    input_jitter_noise: 0.01,
    router_jitter_noise: 0.01,
    router,
  }),
  hiddenSize: hidden, // the block never reads the attention's shapes (an odd width is allowed here)
});

interface BlockRun {
  out: T.Tensor;
  grads: Map<string, T.Tensor | null>;
}

function runBlock(
  config: ReturnType<typeof blockConfig>,
  device: string,
  dtype: 'f32' | 'bf16',
  implementation: MoeImplementation,
  shape: [number, number],
  training: boolean,
  stack = false,
): BlockRun {
  const model = initRandom(config, new T.Generator(3), { device });
  const params = new Map<string, T.Tensor>();
  for (const [name, p] of model.params)
    params.set(name, (dtype === 'bf16' ? T.cast(p, 'bf16') : p).detach().setRequiresGrad());
  if (stack) stackExpertWeights(params, config);
  const n = shape[0] * shape[1] * config.hiddenSize;
  const xData = new T.Generator(8).normal(n, 'f32');
  const x0 = T.tensor(xData, { shape: [...shape, config.hiddenSize], device });
  const x = (dtype === 'bf16' ? T.cast(x0, 'bf16') : x0).detach().setRequiresGrad();
  const { out_BSD, balance } = moe(config, params, 0, x, {
    training,
    generator: new T.Generator(77),
    moeImplementation: implementation,
  });
  const up = T.tensor(new T.Generator(9).normal(n, 'f32'), { shape: [...x.shape], device });
  const upOut = dtype === 'bf16' ? T.cast(up, 'bf16') : up;
  T.add(
    T.cast(T.sum(T.mul(out_BSD, upOut)), 'f32'),
    T.sum(T.mul(balance.meanProbs_E, balance.counts_E)),
  ).backward();
  const grads = new Map<string, T.Tensor | null>([['x', x.grad]]);
  for (const [name, p] of params) grads.set(name, p.grad);
  return { out: out_BSD, grads };
}

function compareBlocks(fast: BlockRun, ref: BlockRun, atol: number, rtol: number): string {
  let worst = close('output', fast.out, ref.out, atol, rtol);
  let worstAbs = Number(/abs ([^,]+)/.exec(worst)![1]);
  for (const [name, grad] of ref.grads) {
    const other = fast.grads.get(name);
    if (!grad) {
      if (other && Array.from(values(other)).some((v) => v !== 0))
        throw new Error(`${name}: gradient where none flows`);
      continue;
    }
    if (!other) throw new Error(`${name}: no gradient on the grouped path`);
    const note = close(name, other, grad, atol, rtol);
    const abs = Number(/abs ([^,]+)/.exec(note)![1]);
    if (abs > worstAbs) [worst, worstAbs] = [note, abs];
  }
  return `worst ${worst}`;
}

/** A forked router with fixed picks: takes the generic routing path on cuda. */
function fixedRouter(picks: number[]): string {
  const name = `fixed-${picks.join('-')}`;
  registerRouter({
    name,
    defaultTopK: picks.length,
    description: 'GPU test fork: fixed picks',
    route(logits_TE, options) {
      const T_ = logits_TE.shape[0]!;
      const base = getRouter('gshard-top2').route(logits_TE, { ...options, topK: picks.length });
      const experts_TK = T.tensor(Array.from({ length: T_ }, () => picks).flat(), {
        shape: [T_, picks.length],
        dtype: 'i32',
        device: logits_TE.device,
      });
      return { experts_TK, weights_TK: base.weights_TK, probs_TE: base.probs_TE };
    },
  });
  return name;
}

function blockCase(
  label: string,
  router: string,
  shape: [number, number],
  hidden: number,
  dtype: 'f32' | 'bf16',
  training = true,
  stack = false,
): Case {
  const topK = router === 'switch-top1' ? 1 : router.startsWith('fixed-') ? router.split('-').length - 1 : 2;
  return {
    name: `moe block ${dtype} ${label}${stack ? ' (w1|w3 stacked: one GEMM)' : ''}: grouped on cuda vs ${dtype === 'f32' ? 'loop on the CPU' : 'loop on cuda'}, output and every gradient`,
    run: () =>
      T.tidy(() => {
        const config = blockConfig(router, hidden, 16, topK);
        const fast = runBlock(config, 'cuda', dtype, 'grouped', shape, training, stack);
        if (dtype === 'f32')
          return compareBlocks(fast, runBlock(config, 'cpu', 'f32', 'loop', shape, training), 1e-6, 1e-5);
        return compareBlocks(fast, runBlock(config, 'cuda', 'bf16', 'loop', shape, training), 2e-2, 2e-2);
      }),
  };
}

export const cases: Case[] = [
  ...FUSED_ROUTERS.flatMap((router) =>
    router === 'sparsemixer-v2'
      ? [
          routeCase(router, true, 4099, 16),
          routeCase(router, false, 4099, 16),
          routeCase(router, true, 333, 64),
        ]
      : [routeCase(router, true, 4099, 16)],
  ),
  blockCase('sparsemixer-v2 with jitter, T=2x33', 'sparsemixer-v2', [2, 33], 64, 'f32'),
  blockCase('sparsemixer-v2 eval, T=2x33', 'sparsemixer-v2', [2, 33], 64, 'f32', false),
  blockCase('gshard-top2, T=1x40', 'gshard-top2', [1, 40], 64, 'f32'),
  blockCase('switch-top1, T=1x40', 'switch-top1', [1, 40], 64, 'f32'),
  blockCase('sparsemixer-v2 with jitter, T=2x33', 'sparsemixer-v2', [2, 33], 64, 'f32', true, true),
  blockCase(
    'fixed picks (3, 9) with jitter, T=4x128',
    fixedRouter([3, 9]),
    [4, 128],
    256,
    'bf16',
    true,
    true,
  ),
  blockCase('T = 1', 'sparsemixer-v2', [1, 1], 64, 'f32'),
  blockCase('odd width D = 7', 'sparsemixer-v2', [1, 9], 7, 'f32'),
  blockCase('empty experts (fixed picks 2, 0)', fixedRouter([2, 0]), [2, 5], 32, 'f32'),
  blockCase('every token on one expert', fixedRouter([1, 1]), [2, 5], 32, 'f32'),
  // bf16: grouped vs the loop on cuda with the same picks (a fixed fork), so the comparison is of the
  // expert math; the fused router's picks are pinned against the CPU above, bf16-valued logits too
  blockCase('fixed picks (3, 9) with jitter, T=4x128', fixedRouter([3, 9]), [4, 128], 256, 'bf16'),
  blockCase('gshard-top2 with jitter, T=4x128', 'gshard-top2', [4, 128], 256, 'bf16'),
];
