// GPU-vs-CPU checks for the neural-network ops, forward and (through autograd) backward:
// softmax / log_softmax on last and middle axes, layerNorm with and without affine, crossEntropy
// (mean / sum / none, ignored rows), scaled dot-product attention (causal, sliding window, GQA:
// the fused attention softmax), rope, topk.
import * as T from '@grin-moe/tensor';
import { type Case, compare, DTYPES, type Dt, Notes, pairFrom, randint, randn, scoped } from './harness.js';

const BF16_GRAD = { atol: 3e-2, rtol: 3e-2 };

/** Runs fn on cuda and cpu leaves made from the same values; compares outputs and input grads. */
export function forwardBackward(
  label: string,
  inputs: Array<{ cpu: T.Tensor; cuda: T.Tensor }>,
  fn: (...xs: T.Tensor[]) => T.Tensor,
  dtype: Dt,
  tol?: { atol: number; rtol: number },
): string {
  const notes = new Notes();
  const cuda = inputs.map((p) => p.cuda.detach().setRequiresGrad());
  const cpu = inputs.map((p) => p.cpu.detach().setRequiresGrad());
  const yc = fn(...cuda);
  const yp = fn(...cpu);
  notes.add(compare(`${label} forward`, yc, yp, tol));
  const g = randn([...yp.shape], dtype);
  yc.backward(g.cuda);
  yp.backward(g.cpu);
  cuda.forEach((t, i) =>
    notes.add(
      compare(
        `${label} grad ${i}`,
        t.grad!,
        cpu[i]!.grad!,
        dtype === 'bf16'
          ? tol && tol.atol > BF16_GRAD.atol
            ? tol
            : BF16_GRAD
          : (tol ?? { atol: 1e-4, rtol: 1e-4 }),
      ),
    ),
  );
  return notes.toString();
}

export const cases: Case[] = [
  ...DTYPES.map((dtype) => ({
    name: `softmax / log_softmax ${dtype}: last axis (rows up to 32064) and a middle axis, with gradients`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        for (const [shape, axis] of [
          [[7, 5], 1],
          [[64, 32064], 1],
          [[3, 300, 4], 1],
          [[4, 6, 2], 0],
        ] as Array<[number[], number]>) {
          const x = randn(shape, dtype, 3);
          notes.add(
            forwardBackward(`softmax [${shape}] axis ${axis}`, [x], (t) => T.softmax(t, axis), dtype),
          );
          notes.add(
            forwardBackward(`log_softmax [${shape}] axis ${axis}`, [x], (t) => T.logSoftmax(t, axis), dtype),
          );
        }
        const inf = pairFrom(Float32Array.from([-Infinity, -Infinity, 1, -Infinity, 2, 3]), [2, 3], dtype);
        notes.add(compare('softmax with -inf', T.softmax(inf.cuda), T.softmax(inf.cpu)));
        return notes.toString();
      }),
  })),
  ...DTYPES.map((dtype) => ({
    name: `layerNorm ${dtype} with and without weight/bias, forward and backward (d up to 20480)`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        // Vectorised paths: a warp per row with 1, 2 or 4 vectors a lane (8..1024), a block per
        // row (1032, 4096, 20480); scalar fallback where d is not a multiple of the vector (100, 1030).
        for (const [rows, d] of [
          [1, 8],
          [37, 100],
          [5, 1030],
          [40, 384],
          [9, 1024],
          [6, 1032],
          [512, 4096],
          [3, 20480],
          [3000, 64],
        ] as Array<[number, number]>) {
          const x = randn([rows, d], dtype, 2, 0.5);
          const w = randn([d], dtype, 0.5, 1);
          const b = randn([d], dtype);
          const tol = dtype === 'f32' ? { atol: 2e-4, rtol: 1e-4 } : undefined;
          notes.add(
            forwardBackward(
              `layerNorm [${rows},${d}]`,
              [x, w, b],
              (t, wt, bt) => T.layerNorm(t, wt, bt, 1e-5),
              dtype,
              tol,
            ),
          );
          notes.add(
            forwardBackward(
              `layerNorm plain [${rows},${d}]`,
              [x],
              (t) => T.layerNorm(t, null, null, 1e-5),
              dtype,
              tol,
            ),
          );
        }
        return notes.toString();
      }),
  })),
  ...DTYPES.map((dtype) => ({
    name: `crossEntropy ${dtype} (mean / sum / none, ignoreIndex rows), forward and backward, V = 32064`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        for (const [n, v] of [
          [5, 7],
          [300, 32064],
        ] as Array<[number, number]>) {
          const logits = randn([n, v], dtype, 2);
          const targets = randint([n], 0, v);
          const host = targets.cpu.toArray() as Int32Array;
          host[1] = -100;
          host[n - 1] = -100;
          const t = { cpu: T.tensor(host), cuda: T.tensor(host, { device: 'cuda' }) };
          for (const reduction of ['mean', 'sum', 'none'] as const) {
            const fn = (l: T.Tensor) =>
              T.crossEntropy(l, l.device === 'cpu' ? t.cpu : t.cuda, { ignoreIndex: -100, reduction });
            const tol = dtype === 'f32' ? { atol: 1e-4, rtol: 1e-5 } : { atol: 5e-2, rtol: 1.6e-2 };
            notes.add(forwardBackward(`crossEntropy ${reduction} [${n},${v}]`, [logits], fn, dtype, tol));
          }
        }
        return notes.toString();
      }),
  })),
  ...DTYPES.map((dtype) => ({
    name: `scaledDotProductAttention ${dtype} (causal, sliding window, GQA) and the fused attentionSoftmax, with grads`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        for (const [opts, skv] of [
          [{ causal: true }, 16],
          [{ causal: true, slidingWindow: 5 }, 20],
          [{}, 16],
        ] as Array<[T.AttentionOptions, number]>) {
          const q = randn([2, 4, 16, 8], dtype);
          const k = randn([2, 2, skv, 8], dtype);
          const v = randn([2, 2, skv, 8], dtype);
          // bf16 composite: scores and probabilities are rounded to bf16 between ops (the CPU
          // reference rounds once at the end), so the forward gets the gradient tolerance.
          const tol = dtype === 'bf16' ? { atol: 6e-2, rtol: 6e-2 } : undefined;
          notes.add(
            forwardBackward(
              `attention ${JSON.stringify(opts)}`,
              [q, k, v],
              (a, b, c) => T.scaledDotProductAttention(a, b, c, opts),
              dtype,
              tol,
            ),
          );
        }
        for (const [S, Skv, causal, window] of [
          [16, 16, true, 0],
          [12, 20, true, 5],
          [7, 9, false, 0],
          [64, 1500, true, 1024],
        ] as Array<[number, number, boolean, number]>) {
          const scores = randn([2, 3, S, Skv], dtype, 2);
          const opts = { scale: 0.37, causal, window };
          notes.add(
            forwardBackward(
              `attentionSoftmax ${JSON.stringify([S, Skv, causal, window])}`,
              [scores],
              (t) => T.attentionSoftmax(t, opts),
              dtype,
            ),
          );
        }
        return notes.toString();
      }),
  })),
  ...DTYPES.map((dtype) => ({
    name: `rope ${dtype} (broadcast cos/sin tables, a transposed input view) forward and backward`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const tables = T.ropeTables([...Array(12).keys()], 16);
        const tab = {
          cos: pairFrom(tables.cos.toArray() as Float32Array, [12, 16], dtype),
          sin: pairFrom(tables.sin.toArray() as Float32Array, [12, 16], dtype),
        };
        const x = randn([2, 12, 3, 16], dtype);
        const fn = (t: T.Tensor) => {
          const on = t.device === 'cpu' ? 'cpu' : 'cuda';
          return T.rope(t.transpose(1, 2), tab.cos[on], tab.sin[on]);
        };
        notes.add(forwardBackward('rope', [x], fn, dtype));
        return notes.toString();
      }),
  })),
  {
    name: 'topk (k = 1, 2, 5) over the last and a middle axis, ties and NaN',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const ints = randint([40, 16], -3, 3);
        const x = { cpu: T.cast(ints.cpu, 'f32'), cuda: T.cast(ints.cuda, 'f32') };
        for (const k of [1, 2, 5]) {
          for (const axis of [1, 0]) {
            const c = T.topk(x.cuda, k, axis);
            const p = T.topk(x.cpu, k, axis);
            notes.add(compare(`topk values k=${k} axis ${axis}`, c.values, p.values));
            notes.add(compare(`topk indices k=${k} axis ${axis}`, c.indices, p.indices));
          }
        }
        const nan = pairFrom(Float32Array.from([1, Number.NaN, 3, 3, Number.NaN, -1]), [1, 6]);
        notes.add(compare('topk NaN', T.topk(nan.cuda, 4).indices, T.topk(nan.cpu, 4).indices));
        return notes.toString();
      }),
  },
];
