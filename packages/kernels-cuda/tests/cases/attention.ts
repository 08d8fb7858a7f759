// GPU-vs-CPU checks for the fused attention op `sdpa` (csrc/attention.cu): forward (out and the row
// log-sum-exp) and sdpa_backward (dq, dk, dv) over a table of shapes: tile remainders, head dims
// 16..128 (padded tiles), Dv != D, GQA ratios 1..4, cached decoding (S < Skv), causal and not,
// sliding windows; f32 (SIMT path) and bf16 (tensor cores). The CPU reference gets the same values.
import * as T from '@grin-moe/tensor';
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
];

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

export const cases: Case[] = DTYPES.map((dtype) => ({
  name: `sdpa ${dtype} forward (out, lse) and backward (dq, dk, dv) over ${SHAPES.length} shapes`,
  run: () => scoped(() => SHAPES.map((s) => scoped(() => checkShape(s, dtype))).join('; ')),
}));
