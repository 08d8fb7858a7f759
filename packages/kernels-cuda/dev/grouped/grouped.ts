// Dev harness for the MoE's grouped GEMMs (csrc/grouped.cpp, csrc/grouped_wgmma.cu) at GRIN's widths
// (hidden 4096, expert intermediate 6400, 16 experts, top-2): the forward, input and weight gradient
// of w1|w3 (stacked) and of w2, each timed through every grouped implementation with random top-2
// counts and with the rows split evenly ("even": 256 an expert at 2048 tokens, no ragged last row
// tile), and against one GEMM of the same FLOPs (every row in one group). Each version's outputs
// are checked against 'lt-serial' (bf16 outputs, f32 sums in another order: a few bf16 ulps).
// Run on a GPU: npx tsx dev/grouped/grouped.ts [tokens...]
// (device machine: /tmp/node .device/dev-grouped.mjs 2048 8192)
import * as T from '@grin-moe/tensor';
import { type GroupedGemmImplementation, gemmInfo, setGroupedGemmImplementation } from '../../src/index.js';
import { requireCuda } from '../harness.js';
import { bigRandn, timeMs } from '../timing.js';

const D = 4096;
const I = 6400;
const E = 16;
const K = 2;
const VERSIONS: GroupedGemmImplementation[] = ['lt-serial', 'lt-streams', 'wgmma'];

/** Rows per expert for `tokens` tokens with K uniform picks each (a fixed seed). */
function balancedCounts(tokens: number): number[] {
  const counts = Array(E).fill(0) as number[];
  let state = 12345;
  for (let i = 0; i < tokens * K; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    counts[Math.floor(state / 65536) % E]++; // the high bits: an LCG's low bits cycle quickly
  }
  return counts;
}

requireCuda('grouped');
const tokenList = process.argv.slice(2).map(Number);
for (const tokens of tokenList.length ? tokenList : [2048, 8192]) {
  T.tidy(() => {
    const rows = tokens * K;
    const counts = balancedCounts(tokens);
    const even = Array.from({ length: E }, (_, e) => Math.floor(rows / E) + (e < rows % E ? 1 : 0));
    // w1|w3: one [E, 2I, D] block, so each expert's two parts lie stacked; w2: E x [D, I]
    const w13 = T.mul(bigRandn([E, 2 * I, D], 'bf16'), 0.02);
    const w13s = [0, 1].flatMap((part) =>
      Array.from({ length: E }, (_, e) => w13.slice([e, e + 1], [part * I, (part + 1) * I]).reshape([I, D])),
    );
    const w2s = Array.from({ length: E }, () => T.mul(bigRandn([D, I], 'bf16'), 0.02));
    const x = bigRandn([rows, D], 'bf16');
    const h = bigRandn([rows, 2 * I], 'bf16'); // w1|w3's output, or its gradient
    const a = bigRandn([rows, I], 'bf16'); // w2's input
    const y = bigRandn([rows, D], 'bf16'); // w2's output gradient
    const problems = [
      { name: 'w1|w3 forward', op: 'grouped_linear' as const, inputs: [x, ...w13s], parts: 2 },
      { name: 'w1|w3 input grad', op: 'grouped_linear_input_grad' as const, inputs: [h, ...w13s], parts: 2 },
      { name: 'w1|w3 weight grad', op: 'grouped_linear_weight_grad' as const, inputs: [h, x], parts: 2 },
      { name: 'w2 forward', op: 'grouped_linear' as const, inputs: [a, ...w2s], parts: 1 },
      { name: 'w2 input grad', op: 'grouped_linear_input_grad' as const, inputs: [y, ...w2s], parts: 1 },
      { name: 'w2 weight grad', op: 'grouped_linear_weight_grad' as const, inputs: [y, a], parts: 1 },
    ];
    console.log(`tokens ${tokens}: ${rows} rows, counts [${counts}]`);
    for (const p of problems) {
      const flops = 2 * rows * D * I * p.parts;
      const run = (c: number[]) => T.runOp(p.op, p.inputs, { counts: c, parts: p.parts });
      /** every output as one flat f32 vector */
      const flat = (ts: T.Tensor[]) =>
        T.concat(
          ts.map((t) => T.cast(t, 'f32').reshape([-1])),
          0,
        );
      setGroupedGemmImplementation('lt-serial');
      const reference = flat(run(counts));
      const line: string[] = [];
      for (const version of VERSIONS) {
        setGroupedGemmImplementation(version);
        const before = gemmInfo().wgmmaGroupedCalls;
        const diff = T.tidy(() => T.max(T.abs(T.sub(flat(run(counts)), reference)), 0).item());
        const launched = gemmInfo().wgmmaGroupedCalls > before ? ' wgmma kernel' : '';
        const ms = timeMs(() => void run(counts), 10);
        // the same rows split evenly (a multiple of 128 an expert at 2048 and 8192 tokens): what the
        // last, partly filled row tile of each expert costs
        const msEven = timeMs(() => void run(even), 10);
        line.push(
          `${version} ${ms.toFixed(3)} ms ${(flops / ms / 1e9).toFixed(0)} TFLOP/s, even ${(flops / msEven / 1e9).toFixed(0)} (max diff ${diff.toExponential(1)}${launched})`,
        );
      }
      // one group of all rows through Lt: the dense GEMM of the same FLOPs (its weights are expert 0's
      // widened by the group count, so time only: the shapes match, the values do not)
      setGroupedGemmImplementation('lt-serial');
      const one = Array(E).fill(0) as number[];
      one[0] = rows;
      const ms = timeMs(() => void run(one), 10);
      line.push(`one group ${ms.toFixed(3)} ms ${(flops / ms / 1e9).toFixed(0)} TFLOP/s`);
      console.log(`  ${p.name.padEnd(18)} ${line.join('; ')}`);
    }
  });
}
setGroupedGemmImplementation('lt-serial');
