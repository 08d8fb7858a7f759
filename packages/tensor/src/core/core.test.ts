// The tensor core: views, reductions, layout ops and their gradients; autograd mechanics
// (accumulation, upstream gradients, custom functions, no-grad); memory ownership; the registry.
// Run: cd packages/tensor && npx vitest run src/core/core
import { describe, expect, it } from 'vitest';
import * as T from '../index.js';
import { expectAllClose, expectNoLeaks, gradcheck } from '../testing.js';

const ramp = (shape: number[], requiresGrad = true) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return T.tensor(
    Array.from({ length: n }, (_, i) => Math.cos(i * 0.7) + i * 0.01),
    { shape, dtype: 'f64', requiresGrad },
  );
};

describe('views', () => {
  it('reshape, permute, transpose, expand, slice and select read the right elements', () => {
    const x = T.arange(24, { dtype: 'f32' }).reshape([2, 3, 4]);
    expect(x.permute([2, 0, 1]).toList()).toEqual([
      [
        [0, 4, 8],
        [12, 16, 20],
      ],
      [
        [1, 5, 9],
        [13, 17, 21],
      ],
      [
        [2, 6, 10],
        [14, 18, 22],
      ],
      [
        [3, 7, 11],
        [15, 19, 23],
      ],
    ]);
    expect(x.slice(null, [1, 3], [0, 4, 2]).toList()).toEqual([
      [
        [4, 6],
        [8, 10],
      ],
      [
        [16, 18],
        [20, 22],
      ],
    ]);
    expect(x.slice([-1]).toList()).toEqual([
      [
        [12, 13, 14, 15],
        [16, 17, 18, 19],
        [20, 21, 22, 23],
      ],
    ]);
    expect(x.select(1, -1).toList()).toEqual([
      [8, 9, 10, 11],
      [20, 21, 22, 23],
    ]);
    expect(T.tensor([1, 2]).reshape([2, 1]).expand([2, 3]).toList()).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
    // reshape of a transposed view must copy; of a contiguous-merge-able view need not.
    const t = x.transpose(1, 2);
    expect(t.reshape([2, 12]).toList()).toEqual([
      [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11],
      [12, 16, 20, 13, 17, 21, 14, 18, 22, 15, 19, 23],
    ]);
    const v = x.slice([0, 1]).reshape([3, 4]);
    expect(v.storage).toBe(x.storage);
    expect(x.reshape([-1, 6]).shape).toEqual([4, 6]);
  });

  it('views have gradients', () => {
    const x = ramp([2, 3, 4]);
    gradcheck((a) => a.permute([1, 2, 0]).reshape([3, 8]), [x]);
    gradcheck((a) => a.slice(null, [0, 3, 2], [1]).transpose(0, 2), [x]);
    gradcheck((a) => a.select(2, 1).unsqueeze(0).expand([5, 2, 3]), [x]);
    gradcheck((a) => a.flatten(1).reshape([4, 6]), [x]);
  });

  it('rejects impossible views with the shapes in the message', () => {
    const x = T.zeros([2, 3]);
    expect(() => x.reshape([4, 2])).toThrow(/cannot reshape \[2,3\] \(6 elements\) into \[4,2\]/);
    expect(() => x.expand([2, 4])).toThrow(/cannot expand f32\[2,3\] on cpu to \[2,4\]/);
    expect(() => x.permute([0, 0])).toThrow(/not a permutation/);
    expect(() => x.squeeze(0)).toThrow(/has size 2, not 1/);
    expect(() => x.select(5, 0)).toThrow(/axis 5 is out of range for a tensor of rank 2/);
  });
});

describe('reductions', () => {
  it.each([[[0]], [[1]], [[0, 2]], [[2]], [[0, 1, 2]]])('sum and mean over %j with gradients', (axes) => {
    const x = ramp([2, 3, 4]);
    const data = x.toArray() as Float64Array;
    const s = T.sum(x, axes, true);
    // reference: accumulate each element into its kept position
    const ref = new Float64Array(s.size);
    const outShape = s.shape;
    for (let i = 0; i < 24; i++) {
      const idx = [Math.floor(i / 12), Math.floor(i / 4) % 3, i % 4];
      const o = idx.map((v, k) => (axes.includes(k) ? 0 : v));
      ref[(o[0]! * outShape[1]! + o[1]!) * outShape[2]! + o[2]!]! += data[i]!;
    }
    expectAllClose(s, ref, { atol: 1e-12 });
    gradcheck((a) => T.sum(a, axes), [x]);
    gradcheck((a) => T.mean(a, axes, true), [x]);
    gradcheck((a) => T.sum(a.transpose(0, 2), axes), [x]);
  });

  it('max and argmax pick the first maximum and route the gradient there', () => {
    const x = T.tensor(
      [
        [1, 5, 5],
        [7, 2, 7],
      ],
      { dtype: 'f64', requiresGrad: true },
    );
    expect(Array.from(T.argmax(x, 1).toArray())).toEqual([1, 0]);
    expect(Array.from(T.max(x, 0).toArray())).toEqual([7, 5, 7]);
    T.sum(T.max(x, 1)).backward();
    expect(x.grad!.toList()).toEqual([
      [0, 1, 0],
      [1, 0, 0],
    ]);
    gradcheck((a) => T.max(a, 0, true), [ramp([3, 4])]);
    expect(Number.isNaN(T.max(T.tensor([1, Number.NaN, 3]), 0).item())).toBe(true);
    // Checked in the op, once for every backend.
    expect(() => T.max(T.zeros([2, 0]), -1)).toThrow('max: axis 1 of f32[2,0] on cpu is empty');
  });
});

describe('layout ops', () => {
  it('concat, split, slice scatter and cast', () => {
    const a = ramp([2, 3]);
    const b = ramp([2, 1]);
    expect(
      T.concat(
        [
          T.tensor([[1], [2]]),
          T.tensor([
            [3, 4],
            [5, 6],
          ]),
        ],
        1,
      ).toList(),
    ).toEqual([
      [1, 3, 4],
      [2, 5, 6],
    ]);
    gradcheck((x, y) => T.concat([x, y, x], 1), [a, b]);
    gradcheck((x) => T.concat(T.split(x, [1, 2], 1).reverse(), 1), [a]);
    gradcheck((x, y) => T.sliceScatter(x, y, [0, 1]), [a, b]);
    expect(T.sliceScatter(T.zeros([2, 4]), T.ones([2, 2]), [0, 0], [1, 2]).toList()).toEqual([
      [1, 0, 1, 0],
      [1, 0, 1, 0],
    ]);
    const f = T.tensor([1.7, -2.5, 0, 3.99]);
    expect(Array.from(T.cast(f, 'i32').toArray())).toEqual([1, -2, 0, 3]);
    expect(Array.from(T.cast(f, 'bool').toArray())).toEqual([1, 1, 0, 1]);
    expectAllClose(T.cast(T.cast(f, 'bf16'), 'f32'), [1.703125, -2.5, 0, 3.984375]);
    gradcheck((x) => T.cast(T.cast(x, 'f32'), 'f64'), [a], { eps: 1e-2, atol: 1e-5 });
  });
});

describe('autograd mechanics', () => {
  it('accumulates across backward calls and takes an upstream gradient', () => {
    const x = T.tensor([1, 2, 3], { dtype: 'f64', requiresGrad: true });
    T.sum(T.mul(x, x)).backward();
    T.sum(T.mul(x, 3)).backward();
    expectAllClose(x.grad!, [5, 7, 9]);
    x.grad = null;
    T.exp(x).backward(T.tensor([1, 0, 2], { dtype: 'f64' }));
    expectAllClose(x.grad!, [Math.E, 0, 2 * Math.exp(3)]);
    expect(() => T.exp(x).backward()).toThrow(/not a scalar; pass the upstream gradient/);
  });

  it('uses a value twice (diamond graph) and frees the graph after backward', () => {
    const x = ramp([3]);
    gradcheck((a) => T.mul(T.exp(a), a), [x]);
    const y = T.sum(T.mul(T.exp(x), x));
    y.backward();
    expect(() => y.backward()).toThrow(/already freed; pass retainGraph: true/);
  });

  it('noGrad records nothing and in-place updates of tracked tensors are refused', () => {
    const x = T.ones([2], { requiresGrad: true });
    const y = T.noGrad(() => T.mul(x, 2));
    expect(y.requiresGrad).toBe(false);
    expect(() => T.addInPlace(x, T.ones([2]))).toThrow(/run it inside noGrad/);
    T.noGrad(() => T.addInPlace(x, T.ones([2]), 0.5));
    expectAllClose(x, [1.5, 1.5]);
  });

  it('in-place updates check the source once, in the op, for every backend', () => {
    const dst = T.zeros([2, 3]);
    expect(() => T.copyInPlace(dst, T.zeros([2, 3], { dtype: 'i32' }))).toThrow(
      'copyInPlace: dtypes differ (f32[2,3] on cpu <- i32[2,3] on cpu); cast the source first',
    );
    expect(() => T.addInPlace(dst, T.zeros([3], { dtype: 'f64' }))).toThrow(/^addInPlace: dtypes differ/);
    // a source that would grow the destination is refused; one that broadcasts into it is fine
    expect(() => T.copyInPlace(T.zeros([3]), T.zeros([2, 3]))).toThrow(
      "copyInPlace: f32[2,3] on cpu does not broadcast to the destination's shape [3]",
    );
    expect(() => T.addInPlace(dst, T.zeros([4]))).toThrow(/^addInPlace: .*broadcast/);
    expect(() => T.addInPlace(T.zeros([2], { dtype: 'bool' }), T.zeros([2], { dtype: 'bool' }))).toThrow(
      'addInPlace: bool[2] on cpu is bool; add needs numbers',
    );
    T.copyInPlace(dst, T.tensor([1, 2, 3]));
    T.addInPlace(dst, T.tensor([[1], [2]]), 2);
    expect(Array.from(dst.toArray() as Float32Array)).toEqual([3, 4, 5, 5, 6, 7]);
  });

  it('custom functions use their hand-written backward', () => {
    // forward x^2, backward deliberately 10 * g: the gradient comes from the rule, not the value
    const op = T.customOp<number>('scaled', {
      forward: (ctx, [x], factor) => {
        ctx.save(x!);
        ctx.data.factor = factor;
        return [T.mul(x!, x!)];
      },
      backward: (ctx, [g]) => [T.mul(T.mul(g!, ctx.saved[0]!), ctx.data.factor as number)],
    });
    const x = T.tensor([1, 2], { dtype: 'f64', requiresGrad: true });
    const [y] = op([x], 10);
    expectAllClose(y!, [1, 4]);
    T.sum(y!).backward();
    expectAllClose(x.grad!, [10, 20]);
  });

  it('gradients are exclusive tensors even when the graph aliases them', () => {
    const a = T.ones([2], { requiresGrad: true });
    const b = T.ones([2], { requiresGrad: true });
    T.sum(T.add(a, b)).backward();
    expect(a.grad!.storage).not.toBe(b.grad!.storage);
  });
});

describe('memory', () => {
  it('scopes free intermediates and keep results; nothing leaks through forward and backward', () => {
    const w = ramp([4, 3]);
    expectNoLeaks(() => {
      const kept = T.tidy(() => {
        const h = T.relu(T.mul(w, 2));
        const loss = T.mean(T.exp(h));
        loss.backward();
        return T.sum(h);
      });
      expect(kept.disposed).toBe(false);
      kept.dispose();
    }, 1);
    {
      using scope = new T.Scope();
      const t = T.ones([3]);
      const kept = scope.keep(T.add(t, 1));
      scope.dispose();
      expect(t.disposed).toBe(true);
      expect(kept.disposed).toBe(false);
    }
  });

  it('disposed tensors refuse use with a clear message', () => {
    const t = T.ones([2]);
    t.dispose();
    expect(() => T.exp(t)).toThrow(/exp: tensor f32\[2\] on cpu was disposed/);
  });
});

describe('registry', () => {
  it('an unknown (op, device) pair lists what is registered', () => {
    expect(() => T.getKernel('matmul', 'tpu')).toThrow(
      /no kernel for op 'matmul' on backend 'tpu'. 'matmul' is registered for: cpu/,
    );
    expect(() => T.zeros([2], { device: 'cuda' })).toThrow(
      /no backend named 'cuda'.*import '@grin-moe\/kernels-cuda'/,
    );
    expect(T.listKernels().filter((k) => k.backend === 'cpu').length).toBeGreaterThan(30);
  });
});

describe('backend hooks', () => {
  it("a backend's beforeKernel sees every kernel's inputs before it runs (the cuda side stream orders on it)", () => {
    const cpu = T.backendOf('cpu');
    const seen: string[] = [];
    cpu.beforeKernel = (inputs) => seen.push(inputs.map((t) => t.describe()).join(' '));
    try {
      const a = T.tensor([1, 2, 3]);
      const b = T.tensor([[4], [5]]);
      T.add(a, b); // [3] + [2, 1]: one add kernel, its inputs as given
      expect(seen).toEqual(['f32[3] on cpu f32[2,1] on cpu']);
    } finally {
      delete cpu.beforeKernel;
    }
  });

  it("an optimizer's afterParam runs once per parameter with a gradient, in order, after its update", () => {
    const params = [
      T.tensor([1, 2], { requiresGrad: true }),
      T.tensor([3], { requiresGrad: true }),
      T.tensor([4], { requiresGrad: true }),
    ];
    params[0]!.grad = T.tensor([1, 1]);
    params[2]!.grad = T.tensor([1]);
    for (const opt of [new T.AdamW(params, { lr: 0.5 }), new T.SGD(params, { lr: 0.5 })]) {
      const calls: Array<[number, number]> = [];
      // each call sees its parameter already updated (the value has moved from its start)
      const start = params.map((p) => (p.toArray() as Float32Array)[0]!);
      opt.stepOnce({
        afterParam: (i) => calls.push([i, (params[i]!.toArray() as Float32Array)[0]! - start[i]!]),
      });
      expect(calls.map(([i]) => i)).toEqual([0, 2]);
      for (const [, moved] of calls) expect(moved).toBeLessThan(0);
    }
  });
});

describe('identity shortcuts keep the autograd link', () => {
  it('cast to the same dtype, contiguous of a contiguous tensor, repeatKv(x, 1), sumTo to the same shape', () => {
    const x = T.tensor([1, 2], { dtype: 'f64', requiresGrad: true });
    T.sum(T.cast(T.mul(x, 3), 'f64')).backward();
    expect(Array.from(x.grad!.toArray())).toEqual([3, 3]);
    x.grad = null;
    T.sum(T.contiguous(T.mul(x, 2))).backward();
    expect(Array.from(x.grad!.toArray())).toEqual([2, 2]);
    x.grad = null;
    T.sum(T.repeatKv(T.mul(x, 4).reshape([1, 1, 2, 1]), 1)).backward();
    expect(Array.from(x.grad!.toArray())).toEqual([4, 4]);
    x.grad = null;
    T.sum(T.cast(x, 'f64')).backward();
    expect(Array.from(x.grad!.toArray())).toEqual([1, 1]);
  });
});

describe('split', () => {
  it('is one autograd node whose backward concatenates (unused pieces get zeros)', () => {
    const x = ramp([5, 3]);
    gradcheck(
      (a) => {
        const [p, , r] = T.split(a, [2, 1, 2], 0);
        return T.concat([T.mul(p!, 2), T.exp(r!)], 0);
      },
      [x],
    );
    const [a, b] = T.split(T.arange(6, { dtype: 'f32' }).reshape([2, 3]), [1, 2], 1);
    expect(a!.toList()).toEqual([[0], [3]]);
    expect(b!.toList()).toEqual([
      [1, 2],
      [4, 5],
    ]);
    expect(() => T.split(x, [2, 2], 0)).toThrow(/sizes \[2,2\] do not add up to axis 0 of \[5,3\]/);
  });
});
