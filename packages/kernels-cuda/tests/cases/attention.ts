// GPU-vs-CPU checks for the fused attention op `sdpa` (csrc/attention.cu): forward (out and the row
// log-sum-exp) and sdpa_backward (dq, dk, dv) over a table of shapes: tile remainders, head dims
// 16..128 (padded tiles), Dv != D, GQA ratios 1..4, cached decoding (S < Skv), causal and not,
// sliding windows; f32 (SIMT path) and bf16 (tensor cores). The CPU reference gets the same values.
import * as T from '@grin-moe/tensor';
import { cudaStatus, sdpaInfo } from '../../src/index.js';
import { type Case, compare, DTYPES, type Dt, Notes, randn, scoped, type Tol, valuesOf } from './harness.js';

interface Shape {
  B: number;
  H: number;
  Hkv: number;
  S: number;
  Skv: number;
  D: number;
  Dv: number;
  causal: boolean;
  window: number;
}

export const SHAPES: Shape[] = [
  { B: 1, H: 4, Hkv: 2, S: 70, Skv: 70, D: 32, Dv: 32, causal: true, window: 0 },
  { B: 2, H: 4, Hkv: 1, S: 128, Skv: 128, D: 64, Dv: 64, causal: true, window: 50 },
  { B: 1, H: 8, Hkv: 2, S: 100, Skv: 164, D: 128, Dv: 128, causal: true, window: 60 },
  { B: 1, H: 2, Hkv: 2, S: 65, Skv: 65, D: 128, Dv: 96, causal: false, window: 0 },
  { B: 1, H: 2, Hkv: 1, S: 130, Skv: 130, D: 16, Dv: 16, causal: false, window: 40 },
  { B: 1, H: 8, Hkv: 2, S: 300, Skv: 300, D: 128, Dv: 128, causal: true, window: 129 },
  // several 128-query blocks, tiles every row of a warp sees (no per-element mask) and tiles none sees
  { B: 1, H: 4, Hkv: 1, S: 1000, Skv: 1000, D: 128, Dv: 128, causal: true, window: 300 },
  { B: 2, H: 2, Hkv: 2, S: 200, Skv: 200, D: 64, Dv: 64, causal: false, window: 0 },
];

/** bf16 shapes the tensor-core path (attention_tc.cu) takes when rows are 16-byte aligned. */
const TC_SHAPES = SHAPES.filter((s) => (s.D === 64 || s.D === 128) && s.Dv === s.D);
/**
 * On Hopper the wgmma backward stores dS^T for its dQ kernel when the tiles take at most 2 GiB; this
 * shape's take 4 GiB (32 heads x 128 query tiles x 128 key tiles x 8 KB), so its dQ kernel recomputes dS.
 */
const RECOMPUTE_SHAPE: Shape = {
  B: 1,
  H: 32,
  Hkv: 8,
  S: 8192,
  Skv: 8192,
  D: 128,
  Dv: 128,
  causal: false,
  window: 0,
};

const TOLS: Record<Dt, { out: Tol; grad: Tol }> = {
  f32: { out: { atol: 2e-5, rtol: 1e-4 }, grad: { atol: 1e-4, rtol: 1e-3 } },
  // bf16: probabilities and dS are rounded to bf16 before their products (as FlashAttention-2)
  bf16: { out: { atol: 2e-2, rtol: 2e-2 }, grad: { atol: 6e-2, rtol: 6e-2 } },
};

export function checkShape(s: Shape, dtype: Dt): string {
  const notes = new Notes();
  const q = randn([s.B, s.H, s.S, s.D], dtype);
  const k = randn([s.B, s.Hkv, s.Skv, s.D], dtype);
  const v = randn([s.B, s.Hkv, s.Skv, s.Dv], dtype);
  const g = randn([s.B, s.H, s.S, s.Dv], dtype);
  const attrs = { scale: 1 / Math.sqrt(s.D), window: s.window, causal: s.causal };
  const label = `${JSON.stringify(s)} ${dtype}`;
  const [outC, lseC] = T.runOp('sdpa', [q.cuda, k.cuda, v.cuda], attrs);
  const [outP, lseP] = T.runOp('sdpa', [q.cpu, k.cpu, v.cpu], attrs);
  notes.add(compare(`${label} out`, outC!, outP!, TOLS[dtype].out));
  notes.add(compare(`${label} lse`, lseC!, lseP!, { atol: 1e-4, rtol: 1e-4 }));
  const gradsC = T.runOp('sdpa_backward', [q.cuda, k.cuda, v.cuda, outC!, lseC!, g.cuda], attrs);
  // the CPU backward gets the cuda forward's out (rounded as stored) so that only the backward differs
  const outForCpu = T.tensor(Float32Array.from(valuesOf(outC!)), { shape: [...outC!.shape] });
  const gradsP = T.runOp('sdpa_backward', [q.cpu, k.cpu, v.cpu, outForCpu, lseP!, g.cpu], attrs);
  ['dq', 'dk', 'dv'].forEach((name, i) =>
    notes.add(compare(`${label} ${name}`, gradsC[i]!, gradsP[i]!, TOLS[dtype].grad)),
  );
  return notes.toString();
}

/** t's values in a new cuda tensor whose data starts one element (2 bytes) past a 16-byte boundary. */
function misaligned(t: T.Tensor): T.Tensor {
  const flat = T.zeros([t.size + 1], { dtype: t.dtype, device: 'cuda' });
  const view = flat.slice([1, t.size + 1]).reshape([...t.shape]);
  T.copyInPlace(view, t);
  return view;
}

/**
 * The tensor-core path against the general one on the same GPU: aligned inputs take attention_tc.cu,
 * inputs one element off a 16-byte boundary take attention.cu. Both add the same products in the same
 * order with the same bf16 roundings, so every output must be equal (tolerance 0).
 */
function checkPaths(s: Shape, storesDs = true): string {
  const notes = new Notes();
  const q = randn([s.B, s.H, s.S, s.D], 'bf16').cuda;
  const k = randn([s.B, s.Hkv, s.Skv, s.D], 'bf16').cuda;
  const v = randn([s.B, s.Hkv, s.Skv, s.Dv], 'bf16').cuda;
  const g = randn([s.B, s.H, s.S, s.Dv], 'bf16').cuda;
  const attrs = { scale: 1 / Math.sqrt(s.D), window: s.window, causal: s.causal };
  const before = sdpaInfo();
  const fast = T.runOp('sdpa', [q, k, v], attrs);
  const fastGrads = T.runOp('sdpa_backward', [q, k, v, fast[0]!, fast[1]!, g], attrs);
  const mid = sdpaInfo();
  const [qm, km, vm, gm] = [q, k, v, g].map(misaligned) as [T.Tensor, T.Tensor, T.Tensor, T.Tensor];
  const slow = T.runOp('sdpa', [qm, km, vm], attrs);
  const slowGrads = T.runOp('sdpa_backward', [qm, km, vm, misaligned(fast[0]!), fast[1]!, gm], attrs);
  const after = sdpaInfo();
  // on Hopper head dim 128 runs on wgmma (attention_wgmma.cu, attention_wgmma_backward.cu); elsewhere on mma.sync
  const hopper = cudaStatus().devices?.[0]?.computeCapability === '9.0';
  const wgmma = hopper && s.D === 128 ? 1 : 0;
  const stored = storesDs ? wgmma : 0;
  if (
    mid.tensorCoreCalls - before.tensorCoreCalls !== 2 ||
    after.generalCalls - mid.generalCalls !== 2 ||
    mid.wgmmaForwardCalls - before.wgmmaForwardCalls !== wgmma ||
    mid.wgmmaBackwardCalls - before.wgmmaBackwardCalls !== wgmma ||
    mid.wgmmaStoredDsCalls - before.wgmmaStoredDsCalls !== stored
  )
    throw new Error(
      `expected 2 tensor-core calls (${wgmma} forward and ${wgmma} backward on wgmma, ${stored} with stored dS) then 2 general ones, got ${JSON.stringify({ before, mid, after })}`,
    );
  const exact = { atol: 0, rtol: 0 };
  const label = JSON.stringify(s);
  notes.add(compare(`${label} out`, fast[0]!, slow[0]!, exact));
  notes.add(compare(`${label} lse`, fast[1]!, slow[1]!, exact));
  ['dq', 'dk', 'dv'].forEach((name, i) =>
    notes.add(compare(`${label} ${name}`, fastGrads[i]!, slowGrads[i]!, exact)),
  );
  return notes.toString();
}

export const cases: Case[] = [
  ...DTYPES.map((dtype) => ({
    name: `sdpa ${dtype} forward (out, lse) and backward (dq, dk, dv) over ${SHAPES.length} shapes`,
    run: () => scoped(() => SHAPES.map((s) => scoped(() => checkShape(s, dtype))).join('; ')),
  })),
  {
    name: `sdpa bf16: the tensor-core path equals the general path exactly (${TC_SHAPES.length} shapes, forward and backward)`,
    run: () => scoped(() => TC_SHAPES.map((s) => scoped(() => checkPaths(s))).join('; ')),
  },
  {
    name: 'sdpa bf16: the tensor-core path equals the general path exactly where dS is too large to store (4 GiB)',
    run: () => scoped(() => checkPaths(RECOMPUTE_SHAPE, false)),
  },
];
