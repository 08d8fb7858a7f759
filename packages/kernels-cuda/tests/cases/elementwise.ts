// GPU-vs-CPU checks for the elementwise ops over a table of shapes: unary maps (f32, bf16, i32
// where defined, and a transposed view), binary ops with broadcasting, comparisons, where,
// masked_fill, pow and the fused SiLU gradient.
import * as T from '@grin-moe/tensor';
import { type Case, compare, DTYPES, Notes, randbool, randint, randn, scoped } from './harness.js';

const UNARY_FNS: Record<string, (t: T.Tensor) => T.Tensor> = {
  neg: T.neg,
  exp: T.exp,
  log: T.log,
  sqrt: T.sqrt,
  rsqrt: T.rsqrt,
  abs: T.abs,
  silu: T.silu,
  sigmoid: T.sigmoid,
  tanh: T.tanh,
  relu: T.relu,
};
const UNARY = Object.keys(UNARY_FNS);
const POSITIVE = new Set(['log', 'sqrt', 'rsqrt']);
const SHAPES: number[][] = [[], [1], [7], [3, 5], [33, 65], [4, 3, 5, 2], [1024, 1031]];
/** Pairs that broadcast: [a shape, b shape]. */
const BROADCAST: Array<[number[], number[]]> = [
  [[5], [5]],
  [[3, 4], [4]],
  [
    [3, 1],
    [1, 4],
  ],
  [
    [2, 1, 6],
    [3, 1],
  ],
  [
    [4, 3, 5, 2],
    [3, 1, 2],
  ],
  [[], [6, 7]],
  [[512, 1024], [1024]],
  [
    [256, 1],
    [256, 300],
  ],
];

const binaryOps = {
  add: T.add,
  sub: T.sub,
  mul: T.mul,
  div: T.div,
  maximum: T.maximum,
  minimum: T.minimum,
};
const comparisons = { eq: T.eq, ne: T.ne, lt: T.lt, le: T.le, gt: T.gt, ge: T.ge };

export const cases: Case[] = [
  ...UNARY.flatMap((op) =>
    DTYPES.map((dtype) => ({
      name: `${op} ${dtype} over ${SHAPES.length} shapes + a transposed view`,
      run: () =>
        scoped(() => {
          const notes = new Notes();
          for (const shape of SHAPES) {
            const x = POSITIVE.has(op) ? randn(shape, dtype, 1, 3) : randn(shape, dtype, 2);
            const fn = UNARY_FNS[op]!;
            notes.add(compare(`${op} [${shape}]`, fn(x.cuda), fn(x.cpu)));
          }
          const x = randn([37, 19], dtype, 2, POSITIVE.has(op) ? 9 : 0);
          const fn = UNARY_FNS[op]!;
          notes.add(compare(`${op} transposed`, fn(x.cuda.transpose()), fn(x.cpu.transpose())));
          return notes.toString();
        }),
    })),
  ),
  {
    name: 'neg / abs / relu on i32',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const x = randint([1000], -100, 100);
        for (const fn of [T.neg, T.abs, T.relu]) notes.add(compare('i32 unary', fn(x.cuda), fn(x.cpu)));
        return notes.toString();
      }),
  },
  ...DTYPES.map((dtype) => ({
    name: `pow (2, 3, 0.5, -1.5) ${dtype}`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const x = randn([129, 33], dtype, 1, 3);
        for (const e of [2, 3, 0.5, -1.5]) notes.add(compare(`pow ${e}`, T.pow(x.cuda, e), T.pow(x.cpu, e)));
        return notes.toString();
      }),
  })),
  ...Object.entries(binaryOps).flatMap(([op, fn]) =>
    DTYPES.map((dtype) => ({
      name: `${op} ${dtype} with broadcasting over ${BROADCAST.length} shape pairs`,
      run: () =>
        scoped(() => {
          const notes = new Notes();
          for (const [sa, sb] of BROADCAST) {
            const a = randn(sa, dtype);
            const b = op === 'div' ? randn(sb, dtype, 1, 4) : randn(sb, dtype);
            notes.add(compare(`${op} [${sa}] [${sb}]`, fn(a.cuda, b.cuda), fn(a.cpu, b.cpu)));
            notes.add(compare(`${op} [${sb}] [${sa}]`, fn(b.cuda, a.cuda), fn(b.cpu, a.cpu)));
          }
          const a = randn([40, 24], dtype);
          const b = randn([24, 40], dtype);
          notes.add(
            compare(`${op} transposed`, fn(a.cuda, b.cuda.transpose()), fn(a.cpu, b.cpu.transpose())),
          );
          return notes.toString();
        }),
    })),
  ),
  {
    name: 'add / sub / mul / div / maximum / minimum on i32 (div by zero -> 0, truncation)',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const a = randint([3, 200], -50, 50);
        const b = randint([200], -5, 5);
        for (const fn of Object.values(binaryOps))
          notes.add(compare('i32 binary', fn(a.cuda, b.cuda), fn(a.cpu, b.cpu)));
        return notes.toString();
      }),
  },
  ...DTYPES.map((dtype) => ({
    name: `comparisons ${dtype} (integer-valued data so ties occur)`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const a = randint([64, 33], -3, 3);
        const b = randint([33], -3, 3);
        const [ac, bc] = [T.cast(a.cuda, dtype), T.cast(b.cuda, dtype)];
        const [ap, bp] = [T.cast(a.cpu, 'f32'), T.cast(b.cpu, 'f32')];
        for (const fn of Object.values(comparisons)) notes.add(compare('compare', fn(ac, bc), fn(ap, bp)));
        for (const fn of Object.values(comparisons))
          notes.add(compare('compare i32', fn(a.cuda, b.cuda), fn(a.cpu, b.cpu)));
        return notes.toString();
      }),
  })),
  ...DTYPES.map((dtype) => ({
    name: `where and masked_fill ${dtype} with broadcast conditions`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const cond = randbool([7, 1, 9]);
        const a = randn([5, 9], dtype);
        const b = randn([7, 5, 1], dtype);
        notes.add(compare('where', T.where(cond.cuda, a.cuda, b.cuda), T.where(cond.cpu, a.cpu, b.cpu)));
        notes.add(compare('where scalar', T.where(cond.cuda, a.cuda, -1), T.where(cond.cpu, a.cpu, -1)));
        const x = randn([7, 5, 9], dtype);
        const mask = randbool([5, 1]);
        notes.add(
          compare('masked_fill', T.maskedFill(x.cuda, mask.cuda, -1e4), T.maskedFill(x.cpu, mask.cpu, -1e4)),
        );
        notes.add(
          compare(
            'masked_fill -inf',
            T.maskedFill(x.cuda, mask.cuda, -Infinity),
            T.maskedFill(x.cpu, mask.cpu, -Infinity),
          ),
        );
        return notes.toString();
      }),
  })),
  {
    name: 'where on i32 and bool values',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const cond = randbool([300]);
        const a = randint([300], -9, 9);
        const b = randint([1], 100, 101);
        notes.add(compare('where i32', T.where(cond.cuda, a.cuda, b.cuda), T.where(cond.cpu, a.cpu, b.cpu)));
        const p = randbool([300]);
        const q = randbool([300]);
        notes.add(compare('where bool', T.where(cond.cuda, p.cuda, q.cuda), T.where(cond.cpu, p.cpu, q.cpu)));
        return notes.toString();
      }),
  },
  ...DTYPES.map((dtype) => ({
    name: `silu gradient (autograd through silu_backward) ${dtype}`,
    run: () =>
      scoped(() => {
        const x = randn([123, 45], dtype, 3);
        const g = randn([123, 45], dtype);
        const xc = x.cuda.detach().setRequiresGrad();
        const xp = x.cpu.detach().setRequiresGrad();
        T.silu(xc).backward(g.cuda);
        T.silu(xp).backward(g.cpu);
        return compare('silu grad', xc.grad!, xp.grad!);
      }),
  })),
];
