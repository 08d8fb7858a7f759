// GPU-vs-CPU checks for the fused AdamW step (f32 master weights, several steps, weight decay,
// a bf16 gradient into f32 weights), mixed-precision AdamW (bf16 parameters re-rounded from f32
// master weights; f32 moments, and bf16 ones stored by stochastic rounding) and an end-to-end
// training step of a tiny MLP language model (embedding, layerNorm, matmul, silu, crossEntropy,
// AdamW) on cuda vs cpu.
import * as T from '@grin-moe/tensor';
import {
  adamwAttrs,
  type Case,
  compare,
  type Dt,
  Notes,
  randint,
  randn,
  scoped,
  valuesOf,
} from './harness.js';

/**
 * Stochastically rounded bf16 moments, cuda against the CPU. The draws are the same, so an element
 * differs only where the f32 values the two round (f32 arithmetic here, f64 there) straddle a
 * rounding threshold: a few in 10^5 a step, and the difference then decays with beta. Through
 * cancellation a 1-ulp difference of a large moment can be a few ulps of a small one, so values
 * are compared against the tensor's scale. Different draws would make about half of them differ.
 */
function matchRoundedMoments(name: string, gpu: T.Tensor, cpu: T.Tensor): string {
  const [a, b] = [valuesOf(T.cast(gpu, 'f32')), valuesOf(T.cast(cpu, 'f32'))];
  let [differ, scale] = [0, 0];
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) differ++;
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  if (differ > 1 + a.length / 200)
    throw new Error(
      `${name}: ${differ} of ${a.length} stored bf16 moments differ from the CPU's (at most 0.5%)`,
    );
  compare(name, T.cast(gpu, 'f32'), T.cast(cpu, 'f32'), { atol: scale * 2 ** -6, rtol: 8e-3 });
  return `${name} ${differ} of ${a.length} differ`;
}

/**
 * Parameters of `shapes` stepped 5 times by AdamW with `options`, on cuda and on the CPU, with the
 * same gradients; bf16 parameters take bf16 gradients.
 */
function stepBoth(shapes: number[][], dtype: 'f32' | 'bf16', options: T.AdamWOptions) {
  const own = (t: T.Tensor) => (dtype === 'bf16' ? T.cast(t, 'bf16') : t.detach());
  const p = shapes.map((shape) => randn(shape, dtype));
  const pc = p.map((x) => x.cuda.detach().setRequiresGrad());
  const pp = p.map((x) => own(x.cpu).setRequiresGrad());
  const [oc, op] = [new T.AdamW(pc, options), new T.AdamW(pp, options)];
  for (let step = 0; step < 5; step++) {
    for (let i = 0; i < p.length; i++) {
      const g = randn([...p[i]!.cpu.shape], dtype, 1e-2 * (step + 1));
      T.noGrad(() => {
        pc[i]!.grad?.dispose();
        pp[i]!.grad?.dispose();
        pc[i]!.grad = g.cuda.detach();
        pp[i]!.grad = own(g.cpu);
      });
    }
    oc.stepOnce();
    op.stepOnce();
  }
  return { pc, pp, sc: oc.stateDict().tensors, sp: op.stateDict().tensors };
}

/**
 * adamw_step_mixed, 5 steps on cuda and on the CPU from the same values: a bf16 parameter of n
 * elements (a view one element in with `offset` 1, so the scalar loop runs), gradients of
 * `gradDType`, moments of `momentDType`, a device gradient scale on steps 3-5.
 */
function stepMixedKernel(n: number, offset: number, gradDType: Dt, momentDType: Dt) {
  const view = <X extends T.Tensor>(t: X) => (offset ? t.slice([offset, offset + n]) : t) as X;
  const param = randn([n + offset], 'bf16');
  const master = { cpu: view(T.clone(param.cpu)), cuda: view(T.cast(param.cuda, 'f32')) };
  const p = { cpu: view(T.cast(param.cpu, 'bf16')), cuda: view(param.cuda) };
  const zeros = (device: string) => view(T.zeros([n + offset], { dtype: momentDType, device }));
  const m = { cpu: zeros('cpu'), cuda: zeros('cuda') };
  const v = { cpu: zeros('cpu'), cuda: zeros('cuda') };
  for (let step = 1; step <= 5; step++) {
    const g = randn([n + offset], gradDType, 1e-2 * step);
    const attrs = adamwAttrs(step);
    const gcpu = view(gradDType === 'bf16' ? T.cast(g.cpu, 'bf16') : g.cpu);
    const scale = step >= 3 ? [T.tensor([0.37]), T.tensor([0.37], { device: 'cuda' })] : [];
    T.runKernel(
      'adamw_step_mixed',
      'cuda',
      [p.cuda, view(g.cuda), master.cuda, m.cuda, v.cuda, ...scale.slice(1)],
      attrs,
    );
    T.runKernel(
      'adamw_step_mixed',
      'cpu',
      [p.cpu, gcpu, master.cpu, m.cpu, v.cpu, ...scale.slice(0, 1)],
      attrs,
    );
  }
  return { p, master, m, v };
}

export const cases: Case[] = [
  {
    name: 'AdamW f32: 5 steps with weight decay on [1000, 257] and a scalar',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const { pc, pp } = stepBoth([[1000, 257], []], 'f32', { lr: 1e-2, weightDecay: 0.1 });
        pc.forEach((t, i) => notes.add(compare(`param ${i}`, t, pp[i]!, { atol: 1e-6, rtol: 1e-5 })));
        return notes.toString();
      }),
  },
  {
    name: 'adamw_step kernel with a bf16 gradient into f32 weights and f32 moments',
    run: () =>
      scoped(() => {
        const param = randn([4096]);
        const grad = randn([4096], 'bf16', 0.1);
        const m = { cpu: T.zeros([4096]), cuda: T.zeros([4096], { device: 'cuda' }) };
        const v = { cpu: T.zeros([4096]), cuda: T.zeros([4096], { device: 'cuda' }) };
        const attrs = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1 };
        T.runKernel('adamw_step', 'cuda', [param.cuda, grad.cuda, m.cuda, v.cuda], attrs);
        T.runKernel('adamw_step', 'cpu', [param.cpu, grad.cpu, m.cpu, v.cpu], attrs);
        const notes = new Notes();
        notes.add(compare('param', param.cuda, param.cpu, { atol: 1e-6, rtol: 1e-5 }));
        notes.add(compare('exp_avg', m.cuda, m.cpu, { atol: 1e-7, rtol: 1e-5 }));
        notes.add(compare('exp_avg_sq', v.cuda, v.cpu, { atol: 1e-9, rtol: 1e-5 }));
        return notes.toString();
      }),
  },
  // aligned storage takes the 8-wide loop (plus a scalar tail of 3); a view one element in takes
  // the scalar loop; steps 3-5 multiply the gradient by a device scale (the clip coefficient)
  ...(['bf16', 'f32'] as const).flatMap((gradDType) =>
    [0, 1].map(
      (offset): Case => ({
        name: `adamw_step_mixed kernel, 5 steps: bf16 parameter, ${gradDType} gradient, f32 master and moments, ${offset ? 'views one element in (unaligned)' : 'aligned'}, gradient scale on steps 3-5`,
        run: () =>
          scoped(() => {
            const n = 100_003;
            const { p, master, m, v } = stepMixedKernel(n, offset, gradDType, 'f32');
            const notes = new Notes();
            notes.add(compare('master', master.cuda, master.cpu, { atol: 1e-6, rtol: 1e-5 }));
            notes.add(compare('exp_avg', m.cuda, m.cpu, { atol: 1e-7, rtol: 1e-5 }));
            notes.add(compare('exp_avg_sq', v.cuda, v.cpu, { atol: 1e-9, rtol: 1e-5 }));
            // the bf16 parameter is its own master rounded to nearest-even, exactly
            const own = T.bf16BitsToF32Array(T.f32ArrayToBf16Bits(valuesOf(master.cuda) as Float32Array));
            const got = valuesOf(p.cuda);
            for (let i = 0; i < n; i++) {
              if (got[i] !== own[i])
                throw new Error(
                  `param ${i}: ${got[i]} is not the master ${valuesOf(master.cuda)[i]} rounded (${own[i]})`,
                );
            }
            // and within one bf16 step of the CPU's (masters differ by f32 rounding near a tie)
            notes.add(compare('param', p.cuda, T.cast(p.cpu, 'f32'), { atol: 1e-6, rtol: 8e-3 }));
            return notes.toString();
          }),
      }),
    ),
  ),
  // bf16 moments: the same stochastic-rounding draws as the CPU (optim/rounding.ts of the tensor
  // package); see matchRoundedMoments
  ...[0, 1].map(
    (offset): Case => ({
      name: `adamw_step_mixed kernel, 5 steps with bf16 moments (stochastic rounding): bf16 gradient, ${offset ? 'views one element in (unaligned)' : 'aligned'}, gradient scale on steps 3-5`,
      run: () =>
        scoped(() => {
          const { p, master, m, v } = stepMixedKernel(100_003, offset, 'bf16', 'bf16');
          const notes = new Notes();
          // where a moment rounded apart, the update differs by about its 2^-8 share: lr / 256 a step
          notes.add(compare('master', master.cuda, master.cpu, { atol: 2e-5, rtol: 1e-5 }));
          const counts = [
            matchRoundedMoments('exp_avg', m.cuda, m.cpu),
            matchRoundedMoments('exp_avg_sq', v.cuda, v.cpu),
          ];
          notes.add(compare('param', p.cuda, T.cast(p.cpu, 'f32'), { atol: 2e-5, rtol: 8e-3 }));
          return `${notes}; ${counts.join(', ')}`;
        }),
    }),
  ),
  {
    name: 'AdamW with moments bf16 on bf16 parameters: 5 steps on cuda vs cpu (the salt each step and parameter)',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const { pc, pp, sc, sp } = stepBoth([[300, 129], [7]], 'bf16', {
          lr: 1e-2,
          weightDecay: 0.1,
          moments: 'bf16',
        });
        const counts: string[] = [];
        for (const k of Object.keys(sp)) {
          if (sc[k]!.dtype !== (k.startsWith('master') ? 'f32' : 'bf16'))
            throw new Error(`state ${k} is ${sc[k]!.describe()}`);
          if (k.startsWith('master'))
            notes.add(compare(`state ${k}`, sc[k]!, sp[k]!, { atol: 2e-4, rtol: 1e-5 }));
          else counts.push(matchRoundedMoments(`state ${k}`, sc[k]!, sp[k]!));
        }
        pc.forEach((t, i) =>
          notes.add(compare(`param ${i}`, t, T.cast(pp[i]!, 'f32'), { atol: 2e-4, rtol: 8e-3 })),
        );
        return `${notes}; ${counts.join(', ')}`;
      }),
  },
  {
    name: 'AdamW on bf16 parameters (mixed precision): 5 steps on cuda vs cpu, with state dict',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const { pc, pp, sc, sp } = stepBoth([[300, 129], [7]], 'bf16', { lr: 1e-2, weightDecay: 0.1 });
        if (Object.keys(sc).sort().join() !== Object.keys(sp).sort().join())
          throw new Error(`state keys differ: ${Object.keys(sc)} vs ${Object.keys(sp)}`);
        for (const k of Object.keys(sp))
          notes.add(compare(`state ${k}`, sc[k]!, sp[k]!, { atol: 1e-6, rtol: 1e-4 }));
        pc.forEach((t, i) =>
          notes.add(compare(`param ${i}`, t, T.cast(pp[i]!, 'f32'), { atol: 1e-6, rtol: 8e-3 })),
        );
        return notes.toString();
      }),
  },
  {
    name: 'one training step of a tiny MLP language model: loss, every gradient, updated weights',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const [V, D, H, N] = [500, 64, 256, 96];
        const shapes: Record<string, number[]> = {
          emb: [V, D],
          lnw: [D],
          lnb: [D],
          w1: [D, H],
          w2: [H, D],
          out: [D, V],
        };
        const init = Object.fromEntries(
          Object.entries(shapes).map(([k, s]) => [
            k,
            randn(s, 'f32', k === 'lnw' ? 0.1 : 0.2, k === 'lnw' ? 1 : 0),
          ]),
        );
        const ids = randint([N], 0, V);
        const targets = randint([N], 0, V);
        const run = (on: 'cpu' | 'cuda') => {
          const p = Object.fromEntries(
            Object.entries(init).map(([k, v]) => [k, v[on].detach().setRequiresGrad()]),
          );
          const x = T.embedding(p.emb!, ids[on]);
          const h = T.layerNorm(x, p.lnw, p.lnb);
          const y = T.add(x, T.matmul(T.silu(T.matmul(h, p.w1!)), p.w2!));
          const loss = T.crossEntropy(T.matmul(y, p.out!), targets[on]);
          loss.backward();
          const grads = Object.fromEntries(Object.entries(p).map(([k, t]) => [k, T.clone(t.grad!)]));
          new T.AdamW(Object.values(p), { lr: 1e-2 }).stepOnce();
          return { loss, grads, params: p };
        };
        const c = run('cuda');
        const r = run('cpu');
        notes.add(compare('loss', c.loss, r.loss, { atol: 1e-5, rtol: 1e-5 }));
        for (const k of Object.keys(shapes)) {
          notes.add(compare(`grad ${k}`, c.grads[k]!, r.grads[k]!, { atol: 1e-5, rtol: 1e-3 }));
          notes.add(compare(`param ${k}`, c.params[k]!, r.params[k]!, { atol: 2e-4, rtol: 1e-4 }));
        }
        return `loss ${(c.loss.item() as number).toFixed(6)} vs ${(r.loss.item() as number).toFixed(6)}; ${notes}`;
      }),
  },
];
