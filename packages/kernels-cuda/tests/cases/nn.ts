// GPU-vs-CPU checks for the neural-network ops, forward and (through autograd) backward:
// softmax / log_softmax on last and middle axes, layerNorm with and without affine, crossEntropy
// (mean / sum / none, ignored rows, special values, out-of-range targets), scaled dot-product
// attention (causal, sliding window, GQA: the fused attention softmax), rope, topk. The row
// kernels (softmax, layerNorm, crossEntropy) have vectorised and scalar versions; each table
// lists the shapes that reach every launch path in both dtypes.
import * as T from '@grin-moe/tensor';
import {
  type Case,
  compare,
  DTYPES,
  type Dt,
  gen,
  Notes,
  type Pair,
  pairFrom,
  randint,
  randn,
  scoped,
  valuesOf,
} from './harness.js';

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

/**
 * Six rows of n: all -inf, -inf at odd positions, a NaN, a +inf, plain normals, one finite value
 * among -inf. softmax: rows 0, 2, 3 are NaN (as PyTorch); crossEntropy with SPECIAL_TARGETS: NaN
 * loss for rows 0, 2, 3, +inf for row 5 (target on a -inf), row 4 ignored.
 */
function specialRows(n: number, dtype: Dt): Pair {
  const values = gen.normal(6 * n) as Float32Array;
  for (let j = 0; j < n; j++) {
    values[j] = -Infinity;
    if (j % 2 === 1) values[n + j] = -Infinity;
    if (j !== n >> 1) values[5 * n + j] = -Infinity;
  }
  values[2 * n + (n >> 1)] = Number.NaN;
  values[3 * n + n - 1] = Number.POSITIVE_INFINITY;
  return pairFrom(values, [6, n], dtype);
}
const SPECIAL_TARGETS = [3, 2, 1, 0, -100, 1];

/**
 * Row lengths n (vector: 8 bf16 / 4 f32 elements; vecs = n / vector) reaching every softmax path
 * over the last axis: rows of <= 16 vectors packed 32 / lanes to a warp (8: 1 or 2 lanes a row,
 * 24: 4 or 8 with idle lanes, 64, 128), a warp a row up to 128 vectors (128 f32, 384, 1000 bf16,
 * 1024 bf16), a block a row up to 2048 (1000 f32, 1024 f32, 4096, 16384 bf16), streamed beyond
 * (16384 f32, 16392, 32064); the scalar kernel where n is not a multiple of the vector (5, 1030).
 */
const SOFTMAX_ROWS: Array<[number, number]> = [
  [7, 5],
  [1000, 8],
  [333, 24],
  [300, 64],
  [257, 128],
  [50, 384],
  [5, 1000],
  [40, 1024],
  [9, 1030],
  [20, 4096],
  [6, 16384],
  [4, 16392],
  [64, 32064],
];

/**
 * log_softmax forward and gradient, cuda vs cpu. In bf16 the gradient g - exp(y) sum(g) inherits the
 * rounding of y (half an ulp, |y| 2^-9): an element's error reaches p |sum(g)| |y| 2^-8, about 0.1 at
 * V = 32064 (sum(g) ~ 180), which no fixed tolerance covers without hiding real errors elsewhere. So
 * each element is held to that bound (plus BF16_GRAD), computed from the f32 reference.
 */
export function logSoftmaxCase(
  label: string,
  x: Pair,
  fn: (t: T.Tensor) => T.Tensor,
  axis: number,
  dtype: Dt,
): string {
  if (dtype === 'f32') return forwardBackward(label, [x], fn, dtype);
  const xc = x.cuda.detach().setRequiresGrad();
  const xp = x.cpu.detach().setRequiresGrad();
  const yc = fn(xc);
  const yp = fn(xp);
  const forward = compare(`${label} forward`, yc, yp);
  const g = randn([...yp.shape], dtype);
  yc.backward(g.cuda);
  yp.backward(g.cpu);
  const got = valuesOf(xc.grad!);
  const want = valuesOf(xp.grad!);
  const [y, pS] = T.noGrad(() => [valuesOf(yp), valuesOf(T.mul(T.exp(yp), T.sum(g.cpu, axis, true)))]);
  let worst = 0;
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) {
    const bound = BF16_GRAD.atol + BF16_GRAD.rtol * Math.abs(want[i]!) + Math.abs(pS![i]! * y![i]!) * 2 ** -8;
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= bound))
      throw new Error(
        `${label} grad: element ${i} is ${got[i]}, expected ${want[i]} (bound ${bound.toExponential(2)} from bf16 rounding of y)`,
      );
    worst = Math.max(worst, d / bound);
    maxAbs = Math.max(maxAbs, d);
  }
  return `${forward}; grad max abs ${maxAbs.toExponential(2)} (${(100 * worst).toFixed(0)}% of the bf16 bound)`;
}

/** layerNorm with weight and bias (eps 1e-5) on x [rows, d], forward and every gradient, cuda vs cpu. */
export function layerNormCheck(x: Pair, dtype: Dt): string {
  const [rows, d] = x.cpu.shape as [number, number];
  const w = randn([d], dtype, 0.5, 1);
  const b = randn([d], dtype);
  const tol = dtype === 'f32' ? { atol: 2e-4, rtol: 1e-4 } : undefined;
  return forwardBackward(
    `layerNorm [${rows},${d}]`,
    [x, w, b],
    (t, wt, bt) => T.layerNorm(t, wt, bt, 1e-5),
    dtype,
    tol,
  );
}

export const cases: Case[] = [
  ...DTYPES.map((dtype) => ({
    name: `softmax / log_softmax ${dtype}: every last-axis path (packed, warp, block, streamed rows up to 32064; scalar), offset views, -inf/NaN/+inf rows, a middle axis, with gradients`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        for (const [shape, axis] of [
          ...SOFTMAX_ROWS.map((rows): [number[], number] => [rows, 1]),
          [[3, 300, 4], 1],
          [[4, 6, 2], 0],
        ] as Array<[number[], number]>) {
          const x = randn(shape, dtype, 3);
          notes.add(
            forwardBackward(`softmax [${shape}] axis ${axis}`, [x], (t) => T.softmax(t, axis), dtype),
          );
          notes.add(
            logSoftmaxCase(
              `log_softmax [${shape}] axis ${axis}`,
              x,
              (t) => T.logSoftmax(t, axis),
              axis,
              dtype,
            ),
          );
        }
        // Rows read through a view at an element offset: 1 leaves x unaligned (the scalar kernel),
        // 8 keeps it 16-byte aligned (the vector kernel at a non-zero offset).
        for (const offset of [1, 8]) {
          const flat = randn([offset + 9 * 64], dtype, 3);
          const view = (t: T.Tensor) => t.slice([offset]).reshape([9, 64]);
          notes.add(
            forwardBackward(`softmax offset ${offset}`, [flat], (t) => T.softmax(view(t), -1), dtype),
          );
          notes.add(
            forwardBackward(`log_softmax offset ${offset}`, [flat], (t) => T.logSoftmax(view(t), -1), dtype),
          );
        }
        const inf = pairFrom(Float32Array.from([-Infinity, -Infinity, 1, -Infinity, 2, 3]), [2, 3], dtype);
        notes.add(compare('softmax with -inf', T.softmax(inf.cuda), T.softmax(inf.cpu)));
        for (const n of [8, 24, 128, 1024, 4096, 32064, 1030]) {
          const x = specialRows(n, dtype);
          notes.add(compare(`softmax special rows of ${n}`, T.softmax(x.cuda), T.softmax(x.cpu)));
          notes.add(compare(`log_softmax special rows of ${n}`, T.logSoftmax(x.cuda), T.logSoftmax(x.cpu)));
        }
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
          const tol = dtype === 'f32' ? { atol: 2e-4, rtol: 1e-4 } : undefined;
          notes.add(layerNormCheck(x, dtype));
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
    name: `crossEntropy ${dtype} (mean / sum / none, ignoreIndex rows), forward and backward: every path (warp, block, streamed rows up to V = 32064; scalar), offset views, -inf/NaN/+inf rows`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const tol = dtype === 'f32' ? { atol: 1e-4, rtol: 1e-5 } : { atol: 5e-2, rtol: 1.6e-2 };
        const targetsOf = (host: Int32Array) => ({
          cpu: T.tensor(host),
          cuda: T.tensor(host, { device: 'cuda' }),
        });
        // Vector of 8 bf16 / 4 f32, vecs = V / vector. Forward: a warp a row up to 128 vectors
        // (64, 384, 520 bf16), else a block (520 f32, 2048, 16384, 32064); backward: the row in
        // registers with 1, 2 or 4 vectors a lane (64, 384 bf16, 384 f32 and 520 bf16) or a block
        // up to 2048 vectors (520 f32, 2048, 16384 bf16), streamed beyond (16384 f32, 32064).
        // Scalar: V not a multiple of the vector (7, 1030).
        for (const [n, v] of [
          [5, 7],
          [33, 64],
          [37, 384],
          [40, 520],
          [64, 2048],
          [9, 1030],
          [16, 16384],
          [300, 32064],
        ] as Array<[number, number]>) {
          const logits = randn([n, v], dtype, 2);
          const host = randint([n], 0, v).cpu.toArray() as Int32Array;
          host[1] = -100;
          host[n - 1] = -100;
          const t = targetsOf(host);
          for (const reduction of ['mean', 'sum', 'none'] as const) {
            const fn = (l: T.Tensor) =>
              T.crossEntropy(l, l.device === 'cpu' ? t.cpu : t.cuda, { ignoreIndex: -100, reduction });
            notes.add(forwardBackward(`crossEntropy ${reduction} [${n},${v}]`, [logits], fn, dtype, tol));
          }
        }
        // Logits read through a view at an element offset: 1 is unaligned (scalar), 8 aligned (vector).
        for (const offset of [1, 8]) {
          const [n, v] = [6, 1024];
          const flat = randn([offset + n * v], dtype, 2);
          const host = randint([n], 0, v).cpu.toArray() as Int32Array;
          host[2] = -100;
          const t = targetsOf(host);
          for (const reduction of ['mean', 'none'] as const) {
            const fn = (l: T.Tensor) =>
              T.crossEntropy(l.slice([offset]).reshape([n, v]), l.device === 'cpu' ? t.cpu : t.cuda, {
                ignoreIndex: -100,
                reduction,
              });
            notes.add(forwardBackward(`crossEntropy ${reduction} offset ${offset}`, [flat], fn, dtype, tol));
          }
        }
        const special = targetsOf(Int32Array.from(SPECIAL_TARGETS));
        for (const v of [8, 64, 1024, 4096, 32064, 1030]) {
          const logits = specialRows(v, dtype);
          for (const reduction of ['mean', 'none'] as const) {
            const fn = (l: T.Tensor) =>
              T.crossEntropy(l, l.device === 'cpu' ? special.cpu : special.cuda, {
                ignoreIndex: -100,
                reduction,
              });
            notes.add(
              forwardBackward(`crossEntropy ${reduction} special rows of ${v}`, [logits], fn, dtype, tol),
            );
          }
        }
        return notes.toString();
      }),
  })),
  ...DTYPES.map((dtype) => ({
    name: `crossEntropy ${dtype}: an out-of-range target is reported at the next read (forward and backward, every path)`,
    run: () =>
      scoped(() => {
        const seen: string[] = [];
        const expectError = (label: string, pattern: RegExp, run: () => void) => {
          let message = '';
          try {
            run();
          } catch (error) {
            message = (error as Error).message;
          }
          if (!pattern.test(message))
            throw new Error(`${label}: expected a range error matching ${pattern}, got '${message}'`);
          seen.push(message);
        };
        // warp, block, streamed backward, scalar (V not a multiple of the vector)
        for (const v of [64, 4096, 20000, 4095]) {
          const logits = randn([3, v], dtype).cuda;
          const targets = T.tensor(Int32Array.from([0, -100, v + 7]), { device: 'cuda' });
          const attrs = { ignoreIndex: -100, reduction: 'none' as const };
          const pattern = new RegExp(
            `cross_entropy(_backward)?: target ${v + 7} at position 2 is out of range`,
          );
          expectError(`forward V ${v}`, pattern, () => {
            T.crossEntropy(logits, targets, attrs).toArray();
          });
          const g = T.cast(T.ones([3], { device: 'cuda' }), dtype);
          expectError(`backward V ${v}`, pattern, () => {
            T.runKernel('cross_entropy_backward', 'cuda', [g, logits, targets], attrs)[0]!.toArray();
          });
        }
        // The slot is cleared: later reads work.
        if (T.add(randn([4]).cuda, 1).toArray().length !== 4) throw new Error('read after the errors failed');
        return `${seen.length} errors reported, e.g. ${seen[0]!.slice(0, 70)}`;
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
