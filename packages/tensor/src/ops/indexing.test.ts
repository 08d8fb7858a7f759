// embedding, gather / scatterAdd, indexSelect / indexAdd and topk: forward against inline
// reference loops, backward against f64 finite differences (including transposed inputs), and
// the messages of out-of-range indices. Run: cd packages/tensor && npx vitest run src/ops/indexing
import { describe, expect, it } from 'vitest';
import * as T from '../index.js';
import { expectAllClose, expectNoLeaks, gradcheck } from '../testing.js';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const f64 = (shape: number[], scale = 0.37, shift = 0.2) =>
  T.tensor(
    Array.from({ length: numel(shape) }, (_, i) => Math.sin(i * scale + shift) * 1.3 + 0.05 * (i % 7)),
    {
      shape,
      dtype: 'f64',
      requiresGrad: true,
    },
  );
const i32 = (data: number[], shape?: number[]) =>
  T.tensor(data, { dtype: 'i32', shape: shape ?? [data.length] });
const host = (t: T.Tensor) => Array.from(t.toArray() as ArrayLike<number>);
const strides = (shape: number[]) => shape.map((_, i) => numel(shape.slice(i + 1)));
/** Row-major coordinates of every position of `shape`. */
const positions = (shape: number[]) =>
  Array.from({ length: numel(shape) }, (_, p) => shape.map((d, i) => Math.floor(p / strides(shape)[i]!) % d));
const at = (shape: number[], coords: number[]) => coords.reduce((a, c, i) => a + c * strides(shape)[i]!, 0);
/** Deterministic indices in [0, size). */
const indices = (shape: number[], size: number, seed = 3) =>
  i32(
    Array.from({ length: numel(shape) }, (_, i) => (i * 7 + seed) % size),
    shape,
  );

describe('embedding', () => {
  it.each([[[4]], [[2, 3]], [[2, 2, 2]]])(
    'looks up ids of shape %j and accumulates repeated rows in backward',
    (idShape) => {
      const weight = f64([5, 3]);
      const ids = indices(idShape, 5);
      const out = T.embedding(weight, ids);
      expect(out.shape).toEqual([...idShape, 3]);
      const w = host(weight);
      expectAllClose(
        out,
        host(ids).flatMap((id) => w.slice(id * 3, id * 3 + 3)),
      );
      gradcheck((x) => T.embedding(x!, ids), [weight]);
    },
  );
  it('reads a transposed table', () => {
    const stored = f64([3, 5]);
    gradcheck((x) => T.embedding(x!.transpose(), i32([4, 0, 4])), [stored]);
  });
  it('names the id and the table size when an id is out of range', () => {
    expect(() => T.embedding(T.zeros([5, 2]), i32([1, 5, 0]))).toThrow(
      'embedding: id 5 at [1] of ids i32[3] on cpu is out of range for a table of V=5 rows (valid 0..4)',
    );
    expect(() => T.embedding(T.zeros([5, 2]), i32([-1]))).toThrow(/id -1 at \[0\]/);
    expect(() => T.embedding(T.zeros([5, 2]), T.tensor([1]))).toThrow(
      /embedding: ids must be i32, got f32\[1\]/,
    );
  });
});

const gatherCases: Array<[number[], number, number[]]> = [
  [[5], 0, [7]],
  [[3, 4], 1, [3, 6]],
  [[3, 4], 0, [2, 4]],
  [[2, 3, 4], 1, [2, 5, 3]],
  [[2, 3, 4], 2, [1, 2, 2]],
];

describe('gather and scatterAdd', () => {
  it.each(gatherCases)('gather x %j along %i with index %j', (xShape, axis, indexShape) => {
    const x = f64(xShape);
    const index = indices(indexShape, xShape[axis]!);
    const [xs, ix] = [host(x), host(index)];
    const want = positions(indexShape).map(
      (c, p) =>
        xs[
          at(
            xShape,
            c.map((v, d) => (d === axis ? ix[p]! : v)),
          )
        ]!,
    );
    expectAllClose(T.gather(x, axis, index), want);
    gradcheck((a) => T.gather(a!, axis, index), [x]);
  });
  it.each(gatherCases)('scatterAdd into base %j along %i from index %j', (baseShape, axis, indexShape) => {
    const base = f64(baseShape);
    const srcShape = indexShape.map((d, i) => d + (i === 0 ? 1 : 0)); // src may be larger than index
    const src = f64(srcShape, 0.8, 0.5);
    const index = indices(indexShape, baseShape[axis]!);
    const [want, s, ix] = [host(base), host(src), host(index)];
    positions(indexShape).forEach((c, p) => {
      want[
        at(
          baseShape,
          c.map((v, d) => (d === axis ? ix[p]! : v)),
        )
      ] += s[at(srcShape, c)]!;
    });
    expectAllClose(T.scatterAdd(base, axis, index, src), want, { atol: 1e-12 });
    gradcheck((a, b) => T.scatterAdd(a!, axis, index, b!), [base, src]);
  });
  it('differentiates through transposed operands', () => {
    const x = f64([4, 3]);
    const index = indices([3, 2], 3);
    gradcheck((a) => T.gather(a!.transpose(), 0, index.transpose()), [x]);
    gradcheck(
      (a, b) => T.scatterAdd(a!.transpose(), 1, indices([3, 5], 4), b!.transpose()),
      [x, f64([5, 3])],
    );
  });
  it('names the index value, its position and the valid range', () => {
    expect(() => T.gather(T.zeros([2, 3]), 1, i32([0, 3, 1, 2], [2, 2]))).toThrow(
      'gather: index 3 at index[0,1] is out of range for axis 1 of x f32[2,3] on cpu (valid 0..2)',
    );
    expect(() => T.scatterAdd(T.zeros([2, 3]), 0, i32([0, 2], [1, 2]), T.ones([1, 2]))).toThrow(
      /scatter_add: index 2 at index\[0,1\] is out of range for axis 0 of base f32\[2,3\] on cpu \(valid 0..1\)/,
    );
    expect(() => T.gather(T.zeros([2, 3]), 1, i32([0, 1, 0, 1, 0, 1], [3, 2]))).toThrow(
      /no larger on every axis but 1/,
    );
    expect(() => T.gather(T.zeros([2, 3]), 1, i32([0]))).toThrow(/must have the rank of x f32\[2,3\]/);
  });
});

const selectCases: Array<[number[], number, number[]]> = [
  [[5], 0, [4, 0, 4, 2]],
  [[4, 3], 0, [3, 1, 1, 0, 3, 3]],
  [[4, 3], 1, [2, 0]],
  [[2, 3, 4], 1, [1, 1, 2]],
  [[2, 3, 4], 2, [3]],
];

describe('indexSelect and indexAdd', () => {
  it.each(selectCases)('indexSelect from %j along %i at %j', (shape, axis, picks) => {
    const x = f64(shape);
    const outShape = shape.map((d, i) => (i === axis ? picks.length : d));
    const xs = host(x);
    const want = positions(outShape).map(
      (c) =>
        xs[
          at(
            shape,
            c.map((v, d) => (d === axis ? picks[v]! : v)),
          )
        ]!,
    );
    expectAllClose(T.indexSelect(x, axis, i32(picks)), want);
    gradcheck((a) => T.indexSelect(a!, axis, i32(picks)), [x]);
  });
  it.each(selectCases)('indexAdd into %j along %i at %j (duplicates accumulate)', (shape, axis, picks) => {
    const base = f64(shape);
    const srcShape = shape.map((d, i) => (i === axis ? picks.length : d));
    const src = f64(srcShape, 0.9, 1.1);
    const [want, s] = [host(base), host(src)];
    positions(srcShape).forEach((c, p) => {
      want[
        at(
          shape,
          c.map((v, d) => (d === axis ? picks[v]! : v)),
        )
      ] += s[p]!;
    });
    expectAllClose(T.indexAdd(base, axis, i32(picks), src), want, { atol: 1e-12 });
    gradcheck((a, b) => T.indexAdd(a!, axis, i32(picks), b!), [base, src]);
  });
  it('MoE dispatch and combine round trip on transposed views', () => {
    const tokens = f64([3, 4]);
    const order = i32([2, 0, 2, 1]);
    gradcheck(
      (x) => T.indexAdd(T.zeros([4, 3], { dtype: 'f64' }), 0, order, T.indexSelect(x!.transpose(), 0, order)),
      [tokens],
    );
    const f32 = T.indexAdd(T.zeros([2], { dtype: 'f32' }), 0, i32([0, 0, 0]), T.tensor([1e8, 1, 1]));
    expectAllClose(f32, [Math.fround(1e8 + 2), 0], { atol: 0, rtol: 0 });
  });
  it('names the index value, its position and the valid range, and bad shapes', () => {
    expect(() => T.indexSelect(T.zeros([3, 2]), 0, i32([0, -1]))).toThrow(
      'index_select: index -1 at position 1 of index is out of range for axis 0 of x f32[3,2] on cpu (valid 0..2)',
    );
    expect(() => T.indexAdd(T.zeros([3, 2]), 1, i32([2]), T.zeros([3, 1]))).toThrow(
      /index_add: index 2 at position 0 of index.*\(valid 0..1\)/,
    );
    expect(() => T.indexAdd(T.zeros([3, 2]), 0, i32([1, 2]), T.zeros([3, 2]))).toThrow(
      /indexAdd: src f32\[3,2\] on cpu must be \[2,2\]/,
    );
    expect(() => T.indexSelect(T.zeros([3, 2]), 0, i32([0, 1], [1, 2]))).toThrow(
      /indexSelect: index must be 1-d, got i32\[1,2\]/,
    );
  });
});

describe('topk', () => {
  it('orders largest first, breaks ties to the lowest index and counts NaN as largest', () => {
    const x = T.tensor([
      [1, 3, 3, 2, 3],
      [0, NaN, 5, NaN, -1],
    ]);
    const { values, indices: ix } = T.topk(x, 3);
    expect(host(ix)).toEqual([1, 2, 4, 1, 3, 2]);
    expect(host(values)).toEqual([3, 3, 3, NaN, NaN, 5]);
    expect(ix.dtype).toBe('i32');
  });
  it.each([
    [[6], 2, -1],
    [[3, 5], 3, 1],
    [[4, 3], 2, 0],
    [[2, 4, 3], 4, 1],
  ])('on %j picks k=%i along %i like a sort, and routes the gradient to the picks', (shape, k, axis) => {
    const x = f64(shape, 1.9, 0.3);
    const a = axis < 0 ? axis + shape.length : axis;
    const { values, indices: ix } = T.topk(x, k, axis);
    const xs = host(x);
    const outShape = shape.map((d, i) => (i === a ? k : d));
    const want = positions(outShape).map((c) => {
      const lane = Array.from(
        { length: shape[a]! },
        (_, j) =>
          [
            xs[
              at(
                shape,
                c.map((v, d) => (d === a ? j : v)),
              )
            ]!,
            j,
          ] as const,
      );
      lane.sort((p, q) => q[0] - p[0] || p[1] - q[1]);
      return lane[c[a]!]!;
    });
    expect(host(values)).toEqual(want.map((p) => p[0]));
    expect(host(ix)).toEqual(want.map((p) => p[1]));
    gradcheck((t) => T.topk(t!, k, axis).values, [x]);
  });
  it('differentiates through a transposed view and rejects a bad k', () => {
    gradcheck((t) => T.topk(t!.transpose(), 2).values, [f64([4, 3], 1.3)]);
    expect(() => T.topk(T.zeros([2, 3]), 4)).toThrow(
      /topk: k=4 must be an integer in 0..3 \(axis -1 of f32\[2,3\] on cpu\)/,
    );
  });
});

describe('memory', () => {
  it('frees every temporary of the indexing ops, forward and backward', () => {
    const x = f64([4, 3]);
    const w = f64([6, 3], 0.7);
    expectNoLeaks(
      () =>
        T.tidy(() => {
          const picked = T.indexSelect(x, 0, i32([3, 1, 3]));
          const rows = T.embedding(w, i32([5, 0, 2, 5], [2, 2])).reshape([4, 3]);
          const mixed = T.indexAdd(rows, 0, i32([0, 2, 0]), picked);
          const top = T.topk(T.gather(mixed, 1, indices([4, 3], 3)), 2).values;
          T.sum(T.scatterAdd(top, 1, i32([1, 1, 0, 0, 1, 0, 0, 1], [4, 2]), top)).backward();
        }),
      2, // x.grad, w.grad
    );
    expect(w.grad?.shape).toEqual([6, 3]);
  });
});

// These checks live in the ops, once for every backend: the kernels trust them.
describe('indexing argument checks (op layer)', () => {
  it('names the op, the argument, what it got and what it needs', () => {
    expect(() => T.embedding(T.zeros([5]), i32([1]))).toThrow(
      'embedding: weight must be [V,D], got f32[5] on cpu',
    );
    expect(() => T.indexSelect(T.zeros([3, 2]), 0, T.tensor([0]))).toThrow(
      'indexSelect: index must be i32, got f32[1] on cpu',
    );
    expect(() => T.indexAdd(T.zeros([3, 2]), 0, i32([1]), T.zeros([1, 2], { dtype: 'f64' }))).toThrow(
      'indexAdd: src f64[1,2] on cpu must have the dtype of base f32[3,2] on cpu',
    );
    expect(() => T.gather(T.zeros([2, 3]), 1, T.tensor([0, 1], { shape: [1, 2] }))).toThrow(
      'gather: index must be i32, got f32[1,2] on cpu',
    );
    expect(() =>
      T.scatterAdd(T.zeros([2, 3]), 0, i32([0, 1], [1, 2]), T.ones([1, 2], { dtype: 'f64' })),
    ).toThrow('scatterAdd: src f64[1,2] on cpu must have the dtype of base f32[2,3] on cpu');
    expect(() => T.scatterAdd(T.zeros([2, 3]), 0, i32([0, 1, 0], [1, 3]), T.ones([1, 2]))).toThrow(
      'scatterAdd: index i32[1,3] on cpu must have the rank of src f32[1,2] on cpu and be no larger on every axis',
    );
    expect(() => T.scatterAdd(T.zeros([2, 3]), 0, i32([0, 0, 0, 0], [1, 4]), T.ones([1, 4]))).toThrow(
      'scatterAdd: index i32[1,4] on cpu must have the rank of base f32[2,3] on cpu and be no larger on every axis but 0',
    );
    expect(() => T.topk(T.zeros([2, 3]), 1.5, 0)).toThrow(
      'topk: k=1.5 must be an integer in 0..2 (axis 0 of f32[2,3] on cpu)',
    );
  });
});
