// GPU-vs-CPU checks of the dropless MoE ops: the permute (exact, E of 3, 16, 64 and 256, every pick
// on one expert, one token), an out-of-range id reported at the next read, the dispatch, the
// gather-sum combine and its backward, the SiLU-GLU and its backward, and the grouped linear with
// its input and weight gradients (f32 and bf16, empty groups, parts = 2 for w1|w3, 300 row counts
// through the bucketed cuBLASLt plans, and each grouped-GEMM implementation, our wgmma kernel included).
import * as T from '@grin-moe/tensor';
import {
  type GroupedGemmImplementation,
  gemmInfo,
  groupedGemmInfo,
  setGemmTuning,
  setGroupedGemmImplementation,
} from '../../src/index.js';
import { type Case, compare, DTYPES, type Dt, gen, Notes, randint, randn, scoped } from './harness.js';

function permuteCase(label: string, tokens: number, K: number, E: number, ids?: number[]): Case {
  return {
    name: `moe_permute ${label} (T=${tokens}, K=${K}, E=${E}): counts, rows and positions equal the CPU`,
    run: () =>
      scoped(() => {
        const experts = ids
          ? {
              cpu: T.tensor(ids, { shape: [tokens, K], dtype: 'i32' }),
              cuda: T.tensor(ids, { shape: [tokens, K], dtype: 'i32', device: 'cuda' }),
            }
          : randint([tokens, K], 0, E);
        const a = T.moePermute(experts.cuda, E);
        const b = T.moePermute(experts.cpu, E);
        compare('counts', a.counts_E, b.counts_E);
        compare('rowSlot', a.rowSlot_N, b.rowSlot_N);
        compare('position', a.position_TK, b.position_TK);
        return `${tokens * K} picks, exact`;
      }),
  };
}

function combineCase(dt: Dt, D = 4096): Case {
  return {
    name: `moe_dispatch / moe_combine ${dt} (T=1000, K=2, D=${D}): forward and backward`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const experts = randint([1000, 2], 0, 16);
        const pc = T.moePermute(experts.cuda, 16).position_TK;
        const pp = T.moePermute(experts.cpu, 16).position_TK;
        const x = randn([1000, D], dt);
        const y = randn([2000, D], dt);
        const w = randn([1000, 2], dt, 0.5);
        notes.add(compare('dispatch', T.moeDispatch(x.cuda, pc), T.moeDispatch(x.cpu, pp)));
        const yc = y.cuda.detach().setRequiresGrad();
        const yp = y.cpu.detach().setRequiresGrad();
        const wc = w.cuda.detach().setRequiresGrad();
        const wp = w.cpu.detach().setRequiresGrad();
        const outC = T.moeCombine(yc, wc, pc);
        const outP = T.moeCombine(yp, wp, pp);
        notes.add(compare('combine', outC, outP));
        const g = randn([1000, D], dt);
        T.backward(outC, g.cuda);
        T.backward(outP, g.cpu);
        notes.add(compare('d y', yc.grad!, yp.grad!));
        const dwTol = dt === 'bf16' ? { atol: 0.5, rtol: 2e-2 } : { atol: 1e-3, rtol: 1e-5 };
        notes.add(compare('d weights', wc.grad!, wp.grad!, dwTol));
        const xc = x.cuda.detach().setRequiresGrad();
        const xp = x.cpu.detach().setRequiresGrad();
        T.backward(T.moeDispatch(xc, pc), y.cuda);
        T.backward(T.moeDispatch(xp, pp), y.cpu);
        notes.add(compare('d x (dispatch)', xc.grad!, xp.grad!));
        return notes.toString();
      }),
  };
}

function gluCase(dt: Dt, I = 640): Case {
  return {
    name: `silu_glu ${dt} [3000, 2 x ${I}]: forward and backward`,
    run: () =>
      scoped(() => {
        const h = randn([3000, 2 * I], dt, 2);
        const hc = h.cuda.detach().setRequiresGrad();
        const hp = h.cpu.detach().setRequiresGrad();
        const notes = new Notes();
        const outC = T.siluGlu(hc);
        const outP = T.siluGlu(hp);
        notes.add(compare('silu_glu', outC, outP));
        const g = randn([3000, I], dt);
        T.backward(outC, g.cuda);
        T.backward(outP, g.cpu);
        notes.add(compare('d h', hc.grad!, hp.grad!));
        return notes.toString();
      }),
  };
}

/** stacked: each group's two parts are views of one [2 * Out, In] block (as model-grin lays out w1|w3). */
function groupedCase(
  dt: Dt,
  counts: number[],
  parts: number,
  In: number,
  Out: number,
  stacked = false,
): Case {
  return {
    name: `grouped_linear ${dt} counts [${counts.length > 8 ? `${counts.length} groups` : counts}] parts ${parts}${stacked ? ' stacked' : ''} (${In} -> ${Out}): y, dx, dw`,
    run: () =>
      scoped(() => {
        const N = counts.reduce((a, c) => a + c, 0);
        const E = counts.length;
        const x = randn([N, In], dt);
        const ws = Array.from({ length: parts * E }, () => randn([Out, In], dt, 0.05));
        const xc = x.cuda.detach().setRequiresGrad();
        const xp = x.cpu.detach().setRequiresGrad();
        const blocks = stacked ? counts.map((_, e) => T.concat([ws[e]!.cuda, ws[E + e]!.cuda], 0)) : [];
        const wc = ws.map((w, i) =>
          (stacked
            ? blocks[i % E]!.slice([Math.floor(i / E) * Out, (Math.floor(i / E) + 1) * Out])
            : w.cuda.detach()
          ).setRequiresGrad(),
        );
        const wp = ws.map((w) => w.cpu.detach().setRequiresGrad());
        const yc = T.groupedLinear(xc, wc, counts, parts);
        const yp = T.groupedLinear(xp, wp, counts, parts);
        // bf16 results are compared with the f32 reference rounded once; sums of In products differ
        const tol = dt === 'bf16' ? { atol: 2e-2, rtol: 2e-2 } : { atol: 2e-5, rtol: 1e-5 };
        const notes = new Notes();
        notes.add(compare('y', yc, yp, tol));
        const g = randn([N, parts * Out], dt);
        T.backward(yc, g.cuda);
        T.backward(yp, g.cpu);
        notes.add(compare('dx', xc.grad!, xp.grad!, tol));
        const dwTol = dt === 'bf16' ? { atol: 0.25, rtol: 2e-2 } : { atol: 1e-4, rtol: 1e-5 };
        wc.forEach((w, i) => notes.add(compare(`dw ${i}`, w.grad!, wp[i]!.grad!, dwTol)));
        return notes.toString();
      }),
  };
}

/** 300 random group sizes: every one a new row count for the plan cache, which must stay small. */
const manyCounts = Array.from({ length: 300 }, () => gen.randint(1, 0, 97)[0]!);

export const cases: Case[] = [
  permuteCase('random ids', 4096, 2, 16),
  permuteCase('random ids', 16384, 2, 16),
  permuteCase('random ids', 777, 2, 3),
  permuteCase('random ids', 5000, 4, 64),
  permuteCase('random ids', 3000, 2, 256),
  permuteCase('every pick on one expert', 1000, 2, 16, Array(2000).fill(7)),
  permuteCase('one token', 1, 2, 16, [15, 0]),
  {
    name: 'moe_permute: an out-of-range expert id is reported at the next host read',
    run: () =>
      scoped(() => {
        const ids = T.tensor([0, 1, 3, 16], { shape: [2, 2], dtype: 'i32', device: 'cuda' });
        const { counts_E } = T.moePermute(ids, 16);
        try {
          counts_E.toArray();
        } catch (error) {
          const message = (error as Error).message;
          if (!message.includes('moe_permute: expert id 16 at position 3 is out of range (valid 0..15)'))
            throw new Error(`unexpected message: ${message}`);
          return message.slice(0, 80);
        }
        throw new Error('no error was reported for expert id 16 of 16');
      }),
  },
  // 16-byte kernels (widths of 8) and the scalar ones (odd widths)
  ...DTYPES.flatMap((dt) => [combineCase(dt), gluCase(dt), combineCase(dt, 77), gluCase(dt, 13)]),
  ...DTYPES.flatMap((dt) => [
    groupedCase(dt, [5, 0, 64, 129], 2, 256, 96),
    groupedCase(dt, [0, 0, 33], 1, 96, 256),
    groupedCase(dt, [1], 2, 64, 32),
  ]),
  {
    name: 'grouped_linear f32 with 300 groups of new row counts: results match, the plan cache stays small',
    run: () => {
      const before = gemmInfo().plans;
      const note = groupedCase('f32', manyCounts, 1, 64, 48).run();
      const added = gemmInfo().plans - before;
      if (added > 40)
        throw new Error(`${added} cuBLASLt plans for 300 row counts (bucketing should keep a few)`);
      return `${note}; ${added} new plans`;
    },
  },
  ...DTYPES.map((dt) => ({
    name: `grouped_linear ${dt} with GEMM tuning 'grouped' (the default; the input gradient's second part accumulates, beta 1): y, dx, dw`,
    run: () => {
      setGemmTuning('off'); // drops the plans the earlier cases made, so this case's plans are new
      setGemmTuning('grouped');
      try {
        const before = gemmInfo().tunedPlans;
        const note = groupedCase(dt, [300, 0, 700, 129], 2, 512, 384).run();
        const tuned = gemmInfo().tunedPlans - before;
        if (tuned < 1) throw new Error("no grouped GEMM plan was timed with tuning 'grouped'");
        return `${note}; ${tuned} plans timed`;
      } finally {
        setGemmTuning('grouped');
      }
    },
  })),
  // our Hopper kernel: one launch for the forward and one for the input gradient (the weight gradient
  // runs on cuBLASLt), counted so the case proves it ran
  ...(
    [
      [[300, 0, 700, 129], 2, 512, 384], // w1|w3 stacked: K 512 / 768, N 768 / 512
      [[5, 0, 64, 129, 1, 0], 1, 256, 256], // w2-like; groups of 0, 1 and 129 rows
      [[0, 0, 2000], 1, 512, 256], // every row in one group: 16 row tiles
    ] as [number[], number, number, number][]
  ).map(([counts, parts, In, Out]) => ({
    name: `grouped_linear bf16 through 'wgmma' counts [${counts}] parts ${parts} (${In} -> ${Out}): y, dx, dw`,
    run: () => {
      const previous = groupedGemmInfo().implementation;
      setGroupedGemmImplementation('wgmma');
      try {
        const before = gemmInfo().wgmmaGroupedCalls;
        const note = groupedCase('bf16', counts, parts, In, Out, parts === 2).run();
        const ran = gemmInfo().wgmmaGroupedCalls - before;
        if (ran !== 2)
          throw new Error(`the wgmma kernel ran ${ran} times; expected 2 (forward and input gradient)`);
        return `${note}; ${ran} wgmma launches`;
      } finally {
        setGroupedGemmImplementation(previous);
      }
    },
  })),
  ...(['lt-streams', 'cublas-grouped'] as GroupedGemmImplementation[]).flatMap((impl) =>
    DTYPES.map((dt) => ({
      name: `grouped_linear ${dt} through '${impl}' (the default is 'lt-serial'): y, dx, dw`,
      run: () => {
        const previous = groupedGemmInfo().implementation;
        setGroupedGemmImplementation(impl);
        try {
          return groupedCase(dt, [300, 0, 700, 129], 2, 512, 384).run();
        } finally {
          setGroupedGemmImplementation(previous);
        }
      },
    })),
  ),
];
