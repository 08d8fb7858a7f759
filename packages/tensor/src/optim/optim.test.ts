// Optimizers against inline reference loops of torch.optim's update equations, clipping
// against its closed form, schedules against their formulas, and state save/restore.
// Run: cd packages/tensor && npx vitest run src/optim/optim
import { describe, expect, it } from 'vitest';
import * as T from '../index.js';
import { expectAllClose } from '../testing.js';
import { lowbias32, momentDraw, momentSalt, stochasticBf16Bits } from './rounding.js';

function adamwReference(
  p0: number[],
  grads: number[][],
  o: { lr: number; b1: number; b2: number; eps: number; wd: number },
) {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, t) => {
    const step = t + 1;
    for (let i = 0; i < p.length; i++) {
      p[i]! *= 1 - o.lr * o.wd;
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g[i]!;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g[i]! ** 2;
      const mh = m[i]! / (1 - o.b1 ** step);
      const vh = v[i]! / (1 - o.b2 ** step);
      p[i]! -= (o.lr * mh) / (Math.sqrt(vh) + o.eps);
    }
  });
  return p;
}

const gradsFor = (steps: number, n: number) =>
  Array.from({ length: steps }, (_, t) =>
    Array.from({ length: n }, (_, i) => Math.sin(t * 1.3 + i) * (i + 1)),
  );

describe('AdamW', () => {
  it('matches the torch.optim.AdamW equations over several steps (f64)', () => {
    const p0 = [0.5, -1.2, 2.0, 0.01];
    const grads = gradsFor(5, 4);
    const p = T.tensor(p0, { dtype: 'f64', requiresGrad: true });
    const opt = new T.AdamW([p], { lr: 0.05, betas: [0.8, 0.95], eps: 1e-8, weightDecay: 0.1 });
    for (const g of grads) {
      p.grad = T.tensor(g, { dtype: 'f64' });
      opt.stepOnce();
    }
    expectAllClose(p, adamwReference(p0, grads, { lr: 0.05, b1: 0.8, b2: 0.95, eps: 1e-8, wd: 0.1 }), {
      atol: 1e-13,
    });
  });

  it('restores its state exactly: split run equals uninterrupted run', () => {
    const grads = gradsFor(6, 3);
    const run = (split: boolean) => {
      const p = T.tensor([1, 2, 3], { requiresGrad: true });
      let opt = new T.AdamW([p], { lr: 0.1 });
      grads.forEach((g, t) => {
        if (split && t === 3) {
          const saved = opt.stateDict();
          const copy = {
            step: saved.step,
            tensors: Object.fromEntries(Object.entries(saved.tensors).map(([k, v]) => [k, T.clone(v)])),
          };
          opt = new T.AdamW([p], { lr: 0.1 });
          opt.loadStateDict(copy);
        }
        p.grad = T.tensor(g);
        opt.stepOnce();
      });
      return Array.from(p.toArray());
    };
    expect(run(true)).toEqual(run(false));
  });

  it('minimises a quadratic', () => {
    const target = T.tensor([3, -2, 0.5]);
    const w = T.zeros([3], { requiresGrad: true });
    const opt = new T.AdamW([w], { lr: 0.1, weightDecay: 0 });
    for (let i = 0; i < 300; i++) {
      T.tidy(() => {
        opt.zeroGrad();
        T.sum(T.square(T.sub(w, target))).backward();
        opt.stepOnce();
      });
    }
    expectAllClose(w, target, { atol: 1e-2 });
  });

  it('rejects bad state with a message naming the slot', () => {
    const p = T.zeros([2], { requiresGrad: true });
    const opt = new T.AdamW([p]);
    expect(() => opt.loadStateDict({ step: 1, tensors: {} })).toThrow(/missing tensor 'exp_avg.0'/);
    expect(() =>
      opt.loadStateDict({ step: 1, tensors: { 'exp_avg.0': T.zeros([3]), 'exp_avg_sq.0': T.zeros([2]) } }),
    ).toThrow(/'exp_avg.0' has shape \[3\], expected \[2\]/);
    expect(() => new T.AdamW([T.zeros([2])])).toThrow(/does not require grad/);
  });
});

describe('AdamW, mixed precision (bf16 parameter, f32 master)', () => {
  // The reference: plain f32 AdamW on the f32 master values, then each step's parameter rounded to bf16.
  const n = 1000;
  // bf16-representable start values, so the f32 reference and the master start equal
  const init = () =>
    T.bf16BitsToF32Array(T.f32ArrayToBf16Bits(new T.Generator(11).normal(n) as Float32Array));
  const gradsOf = (step: number, dtype: 'f32' | 'bf16') => {
    const g = new T.Generator(100 + step).normal(n) as Float32Array;
    for (let i = 0; i < n; i++) g[i] = g[i]! * 1e-3 * (1 + (i % 7));
    const f32 = T.tensor(g);
    return dtype === 'f32' ? f32 : T.cast(f32, 'bf16');
  };
  const options = { lr: 3e-3, betas: [0.9, 0.95] as [number, number], weightDecay: 0.1 };

  for (const gradDType of ['f32', 'bf16'] as const) {
    it(`equals f32 AdamW followed by rounding, bit for bit (${gradDType} gradients)`, () => {
      const reference = T.tensor(init(), { requiresGrad: true });
      const param = T.cast(T.tensor(init()), 'bf16').setRequiresGrad();
      const refOpt = new T.AdamW([reference], options);
      const opt = new T.AdamW([param], options);
      for (let step = 1; step <= 6; step++) {
        const g = gradsOf(step, gradDType);
        // the reference sees the same (bf16-rounded) gradient values, in f32
        reference.grad = gradDType === 'bf16' ? T.cast(g, 'f32') : T.clone(g);
        param.grad = g;
        refOpt.stepOnce();
        opt.stepOnce();
        const rounded = T.f32ArrayToBf16Bits(reference.toArray() as Float32Array);
        expect(Array.from(param.toArray() as Uint16Array)).toEqual(Array.from(rounded));
      }
      const state = opt.stateDict().tensors;
      const refState = refOpt.stateDict().tensors;
      expect(Object.keys(state).sort()).toEqual(['exp_avg.0', 'exp_avg_sq.0', 'master.0']);
      expect(Array.from(state['master.0']!.toArray())).toEqual(Array.from(reference.toArray()));
      for (const slot of ['exp_avg.0', 'exp_avg_sq.0']) {
        expect(state[slot]!.dtype).toBe('f32');
        expect(Array.from(state[slot]!.toArray())).toEqual(Array.from(refState[slot]!.toArray()));
      }
    });
  }

  it('the master copy, not the bf16 parameter, accumulates updates below bf16 resolution', () => {
    const p = T.cast(T.full([4], 1), 'bf16').setRequiresGrad();
    const opt = new T.AdamW([p], { lr: 1e-4, weightDecay: 0 });
    for (let step = 0; step < 100; step++) {
      p.grad = T.cast(T.full([4], 1), 'bf16');
      opt.stepOnce();
    }
    // each step moves 1e-4, far below bf16's spacing of 2^-7 at 1; 100 steps move 1e-2
    const master = opt.stateDict().tensors['master.0']!.toArray() as Float32Array;
    expect(master[0]).toBeCloseTo(0.99, 5);
    expect(T.bf16BitsToF32Array(p.toArray() as Uint16Array)[0]).toBe(
      T.bf16BitsToF32Array(T.f32ArrayToBf16Bits(Float32Array.of(master[0]!)))[0],
    );
  });

  it('saves and restores the master weights; a state without them starts from the parameter', () => {
    const run = (split: 'none' | 'full' | 'no-master') => {
      const p = T.cast(T.tensor(init()), 'bf16').setRequiresGrad();
      let opt = new T.AdamW([p], options);
      for (let step = 1; step <= 4; step++) {
        if (step === 3 && split !== 'none') {
          const saved = opt.stateDict();
          const tensors = Object.fromEntries(
            Object.entries(saved.tensors)
              .filter(([k]) => split === 'full' || !k.startsWith('master.'))
              .map(([k, v]) => [k, T.clone(v)]),
          );
          opt = new T.AdamW([p], options);
          opt.loadStateDict({ step: saved.step, tensors });
        }
        p.grad = gradsOf(step, 'bf16');
        opt.stepOnce();
      }
      return Array.from(p.toArray() as Uint16Array);
    };
    const full = run('none');
    expect(run('full')).toEqual(full);
    // without the master, step 3 starts from the rounded parameter: close, not necessarily equal
    const approx = T.bf16BitsToF32Array(Uint16Array.from(run('no-master')));
    expectAllClose(approx, T.bf16BitsToF32Array(Uint16Array.from(full)), { atol: 2e-2, rtol: 1e-2 });
  });

  it('AdamW checks its inputs once, before any backend: a gradient of another size is named', () => {
    const p = T.zeros([3], { requiresGrad: true });
    const opt = new T.AdamW([p]);
    p.grad = T.zeros([4]);
    expect(() => opt.stepOnce()).toThrow(
      'AdamW, parameter 0 (f32[3] on cpu): f32[4] on cpu does not match its size',
    );
    p.grad = T.zeros([3]);
    expect(() => opt.stepOnce({ gradScale: T.tensor([1, 1]) })).toThrow(
      'optimizer step: gradScale must be one f32 (or f64) value, got f32[2] on cpu',
    );
  });

  it('a gradScale from gradNormScale gives exactly the step of clipGradNorm then stepOnce', () => {
    for (const dtype of ['f32', 'f64'] as const) {
      const make = () => {
        const params = [
          T.tensor([0.5, -1, 2, 3], { dtype, requiresGrad: true }),
          T.tensor(
            [
              [1, -2],
              [0.25, 4],
            ],
            { dtype, requiresGrad: true },
          ),
        ];
        const grads = [
          T.tensor([3, -4, 12, 0.5], { dtype }),
          T.tensor(
            [
              [1, 7],
              [-2, 0.125],
            ],
            { dtype },
          ),
        ];
        params.forEach((p, i) => {
          p.grad = grads[i]!;
        });
        return { params, opt: new T.AdamW(params, { lr: 0.1, weightDecay: 0.1 }) };
      };
      const clipped = make();
      const norm = T.clipGradNorm(clipped.params, 1);
      clipped.opt.stepOnce();
      const fused = make();
      const { norm: norm2, scale } = T.gradNormScale(fused.params, 1);
      expect(scale.item()).toBeLessThan(0.1); // the norm is about 15: the coefficient clips
      fused.opt.stepOnce({ gradScale: scale });
      expect(norm2.item()).toBe(norm.item());
      fused.params.forEach((p, i) =>
        expect(Array.from(p.toArray() as Float32Array)).toEqual(
          Array.from(clipped.params[i]!.toArray() as Float32Array),
        ),
      );
      // the gradients themselves are left as they were
      expect(Array.from(fused.params[0]!.grad!.toArray() as Float32Array)).toEqual([3, -4, 12, 0.5]);
    }
  });

  it('adamw_step widens a bf16 gradient (same update as its f32 values) and refuses a bf16 parameter', () => {
    const attrs = { lr: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1 };
    const grad32 = T.tensor([0.5, -1.25, 3, -0.0078125]); // exact in bf16
    const run = (grad: T.Tensor) => {
      const [p, m, v] = [T.tensor([1, 2, -3, 4]), T.zeros([4]), T.zeros([4])];
      T.runKernel('adamw_step', 'cpu', [p, grad, m, v], attrs);
      return [p, m, v].map((t) => Array.from(t.toArray() as Float32Array));
    };
    expect(run(T.cast(grad32, 'bf16'))).toEqual(run(grad32));
    const p16 = T.cast(T.tensor([1, 2]), 'bf16');
    expect(() => T.runKernel('adamw_step', 'cpu', [p16, p16, T.zeros([2]), T.zeros([2])], attrs)).toThrow(
      /adamw_step \(cpu\): a bf16 parameter .* needs adamw_step_mixed/,
    );
  });
});

describe('AdamW with bf16 moments (stochastic rounding)', () => {
  it('hashes and rounds as specified (values from an independent Python implementation)', () => {
    expect([0, 1, 2, 0xdeadbeef].map(lowbias32)).toEqual([0, 0x688990c0, 0xd1132181, 0xe628c683]);
    expect(momentSalt(7, 3)).toBe(0xf77e6ef6);
    // an index past 2^32 folds its high word in
    expect(momentDraw(0xf77e6ef6, 5 * 2 ** 32 + 12345)).toBe(0x25c19ef1);
    // 1 + 0.25 * 2^-7: the 16 dropped bits are 0x4000, so draws from 0xc000 up round up
    const x = 1 + 0.25 * 2 ** -7;
    expect(stochasticBf16Bits(x, 0xbfff)).toBe(0x3f80);
    expect(stochasticBf16Bits(x, 0xc000)).toBe(0x3f81);
    expect(stochasticBf16Bits(-x, 0xc000)).toBe(0xbf81); // magnitude up: away from zero
    expect(stochasticBf16Bits(1, 0xffff)).toBe(0x3f80); // exact values never move
    expect(stochasticBf16Bits(Number.POSITIVE_INFINITY, 0xffff)).toBe(0x7f80);
    expect(T.bf16BitsToF32(stochasticBf16Bits(Number.NaN, 0xffff))).toBeNaN();
  });

  it('keeps exp_avg_sq unbiased where nearest-even would stall it (beta2 0.999, 3000 steps)', () => {
    // a constant gradient g gives exp_avg_sq = (1 - beta2^t) g^2 exactly; nearest-even drops every
    // increment below half a bf16 step and would stall near g^2 / 3
    const n = 1024;
    const g = 0.3;
    const p = T.cast(T.zeros([n]), 'bf16').setRequiresGrad();
    const opt = new T.AdamW([p], { lr: 1e-6, betas: [0.9, 0.999], weightDecay: 0, moments: 'bf16' });
    const steps = 3000;
    for (let step = 0; step < steps; step++) {
      p.grad = T.cast(T.full([n], g), 'bf16');
      opt.stepOnce();
    }
    const v = T.bf16BitsToF32Array(opt.stateDict().tensors['exp_avg_sq.0']!.toArray() as Uint16Array);
    const mean = v.reduce((a, b) => a + b, 0) / n;
    const exact = (1 - 0.999 ** steps) * T.bf16BitsToF32(T.f32ToBf16Bits(g)) ** 2;
    // each element's rounding noise is about 3.5% (9 bf16 steps); the mean's about 0.11%
    expect(Math.abs(mean / exact - 1)).toBeLessThan(0.005);
    expect(new Set(v).size).toBeGreaterThan(5); // the elements took different draws
  });

  it('stores bf16 state, stays close to f32 moments, and resumes bit for bit from a state dict', () => {
    const n = 1000;
    const init = () => T.cast(T.tensor(new T.Generator(11).normal(n) as Float32Array), 'bf16');
    const grad = (step: number) =>
      T.cast(T.mul(T.tensor(new T.Generator(100 + step).normal(n) as Float32Array), 1e-2), 'bf16');
    const options = { lr: 3e-3, betas: [0.9, 0.95] as [number, number], weightDecay: 0.1 };
    const run = (moments: 'f32' | 'bf16', splitAt = 0) => {
      const p = init().setRequiresGrad();
      let opt = new T.AdamW([p], { ...options, moments });
      for (let step = 1; step <= 8; step++) {
        if (step === splitAt) {
          const saved = opt.stateDict();
          const tensors = Object.fromEntries(Object.entries(saved.tensors).map(([k, v]) => [k, T.clone(v)]));
          opt = new T.AdamW([p], { ...options, moments });
          opt.loadStateDict({ step: saved.step, tensors });
        }
        p.grad = grad(step);
        opt.stepOnce();
      }
      return { opt, master: opt.stateDict().tensors['master.0']!.toArray() as Float32Array };
    };
    const bf16 = run('bf16');
    const state = bf16.opt.stateDict().tensors;
    expect([state['exp_avg.0']!.dtype, state['exp_avg_sq.0']!.dtype, state['master.0']!.dtype]).toEqual([
      'bf16',
      'bf16',
      'f32',
    ]);
    // 8 steps of 3e-3 move each weight by up to 2.4e-2; the moments' rounding shifts that by < 1%
    expectAllClose(bf16.master, run('f32').master, { atol: 2e-4, rtol: 0 });
    // a resumed run draws what the unbroken one drew (the salt is a hash of step and parameter)
    expect(Array.from(run('bf16', 5).master)).toEqual(Array.from(bf16.master));
  });

  it('disposing its state frees every storage the optimizer made, at once (not at collection)', () => {
    for (const moments of ['f32', 'bf16'] as const) {
      const params = [T.cast(T.ones([64]), 'bf16').setRequiresGrad(), T.ones([8], { requiresGrad: true })];
      const before = T.liveStorages();
      const opt = new T.AdamW(params, { moments });
      // bf16: master, exp_avg, exp_avg_sq; f32: exp_avg, exp_avg_sq
      expect(T.liveStorages() - before).toBe(5);
      for (const t of Object.values(opt.stateDict().tensors)) t.dispose();
      expect(T.liveStorages()).toBe(before);
    }
  });

  it('refuses an unknown moments dtype and mixed moment dtypes, naming them', () => {
    const p = T.cast(T.zeros([3]), 'bf16').setRequiresGrad();
    expect(() => new T.AdamW([p], { moments: 'f16' as 'bf16' })).toThrow(
      `AdamW: moments must be 'f32' or 'bf16', got "f16"`,
    );
    const opt = new T.AdamW([p], { moments: 'bf16' });
    p.grad = T.cast(T.ones([3]), 'bf16');
    opt.stepOnce();
    const other = new T.AdamW([p], { moments: 'bf16' });
    other.loadStateDict(opt.stateDict());
    expect(() => {
      // a state tensor of the wrong dtype can only come from outside: named by the optimizer
      (other as unknown as { expAvgSq: T.Tensor[] }).expAvgSq[0] = T.zeros([3]);
      other.stepOnce();
    }).toThrow(/moments must be both f32 or both bf16, got bf16\[3\] on cpu and f32\[3\] on cpu/);
  });
});

describe('SGD', () => {
  it('matches torch.optim.SGD with momentum and weight decay', () => {
    const grads = gradsFor(4, 2);
    const p = T.tensor([1, -1], { dtype: 'f64', requiresGrad: true });
    const opt = new T.SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    const ref = [1, -1];
    const buf = [0, 0];
    grads.forEach((g, t) => {
      for (let i = 0; i < 2; i++) {
        const d = g[i]! + 0.01 * ref[i]!;
        buf[i] = t === 0 ? d : 0.9 * buf[i]! + d;
        ref[i]! -= 0.1 * buf[i]!;
      }
      p.grad = T.tensor(g, { dtype: 'f64' });
      opt.stepOnce();
    });
    expectAllClose(p, ref, { atol: 1e-14 });
  });
});

describe('clipGradNorm', () => {
  it('scales to the max norm when above it and leaves grads alone below it', () => {
    const a = T.zeros([2], { requiresGrad: true, dtype: 'f64' });
    const b = T.zeros([1], { requiresGrad: true, dtype: 'f64' });
    a.grad = T.tensor([3, 0], { dtype: 'f64' });
    b.grad = T.tensor([4], { dtype: 'f64' });
    const norm = T.clipGradNorm([a, b], 1);
    expectAllClose(norm, [5]);
    expectAllClose(a.grad, [3 / (5 + 1e-6), 0], { atol: 1e-12 });
    expectAllClose(b.grad, [4 / (5 + 1e-6)], { atol: 1e-12 });
    const norm2 = T.clipGradNorm([a, b], 10);
    expectAllClose(norm2, [5 / (5 + 1e-6)], { atol: 1e-12 });
    expectAllClose(b.grad, [4 / (5 + 1e-6)], { atol: 1e-12 });
    expect(() => T.clipGradNorm([a], 0)).toThrow(/maxNorm must be > 0/);
  });
});

describe('schedules', () => {
  it('warmup + cosine follows its formula', () => {
    const s = T.warmupCosine({ peak: 1, warmupSteps: 10, totalSteps: 110, min: 0.1 });
    expect(s(1)).toBeCloseTo(0.1);
    expect(s(10)).toBeCloseTo(1);
    expect(s(60)).toBeCloseTo(0.1 + 0.45 * (1 + Math.cos(Math.PI * 0.5)));
    expect(s(110)).toBeCloseTo(0.1);
    expect(s(500)).toBeCloseTo(0.1);
    const l = T.warmupLinear({ peak: 2, warmupSteps: 0, totalSteps: 4 });
    expect([1, 2, 3, 4].map(l)).toEqual([1.5, 1, 0.5, 0]);
    expect(() => T.warmupCosine({ peak: 1, warmupSteps: 5, totalSteps: 3 })).toThrow(
      /totalSteps \(3\) must be an integer >= warmupSteps \(5\)/,
    );
  });
});

describe('sumSquares (the gradient-norm reduction)', () => {
  it.each([['f32'], ['f64']] as const)('%s: equals sum(mul(x, x)) exactly', (dtype) => {
    const x = T.tensor(
      Array.from({ length: 1001 }, (_, i) => Math.sin(i * 0.7) * (1 + (i % 13))),
      { dtype },
    );
    expect(T.sumSquares(x).item()).toBe(T.sum(T.mul(x, x)).item());
    expect(T.sumSquares(x).dtype).toBe(dtype);
  });
});
