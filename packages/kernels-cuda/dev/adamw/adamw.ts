// Dev harness for the fused AdamW kernels, in place (csrc/fused.cu adamw_step: f32 parameter, f32
// or bf16 gradient, f32 moments; csrc/optim.cu adamw_step_mixed: bf16 parameter re-rounded from an
// f32 master, bf16 or f32 gradient, f32 or bf16 moments): validates 5 steps of each against the CPU
// kernel (parameter, master, both moments; bf16 moments within one bf16 step), then times one step
// at 64M parameters and prints GB/s of the bytes read + written (adamw_step reads param, grad, m, v
// and writes param, m, v; the mixed step reads grad, master, m, v and writes param, master, m, v)
// as a fraction of this GPU's copy bandwidth measured in the same run.
// Run on a GPU: npx tsx dev/adamw/adamw.ts  (device machine: /tmp/node .device/dev-adamw.mjs)
import * as T from '@grin-moe/tensor';
import { adamwAttrs, compare, type Dt, type Pair, randn } from '../../tests/cases/harness.js';
import { requireCuda, validate } from '../harness.js';
import { bigRandn, copyBandwidth, rate, timeMs } from '../timing.js';

/** [kernel, parameter dtype, gradient dtype, moments dtype] */
const VARIANTS: Array<['adamw_step' | 'adamw_step_mixed', Dt, Dt, Dt]> = [
  ['adamw_step', 'f32', 'f32', 'f32'],
  ['adamw_step', 'f32', 'bf16', 'f32'],
  ['adamw_step_mixed', 'bf16', 'bf16', 'f32'],
  ['adamw_step_mixed', 'bf16', 'f32', 'f32'],
  ['adamw_step_mixed', 'bf16', 'bf16', 'bf16'],
];
const hyper = adamwAttrs;
const zeros = (n: number, dtype: Dt): Pair => ({
  cpu: T.zeros([n], { dtype }),
  cuda: T.zeros([n], { dtype, device: 'cuda' }),
});

requireCuda('adamw');
let passed = true;
for (const [op, paramDType, gradDType, momentDType] of VARIANTS) {
  passed =
    validate(`${op} param ${paramDType} grad ${gradDType} moments ${momentDType}`, (notes) => {
      for (const n of [1, 1000, 100_003]) {
        const init = randn([n], paramDType);
        const [m, v] = [zeros(n, momentDType), zeros(n, momentDType)];
        // the CPU kernel gets the same values: a bf16 parameter as bf16, the gradient as f32
        const p = { cpu: T.cast(init.cpu, paramDType), cuda: T.clone(init.cuda) };
        const master = { cpu: T.clone(init.cpu), cuda: T.cast(init.cuda, 'f32') };
        for (let step = 1; step <= 5; step++) {
          const g = randn([n], gradDType, 1e-2 * step);
          const [inCuda, inCpu] =
            op === 'adamw_step'
              ? [
                  [p.cuda, g.cuda, m.cuda, v.cuda],
                  [p.cpu, g.cpu, m.cpu, v.cpu],
                ]
              : [
                  [p.cuda, g.cuda, master.cuda, m.cuda, v.cuda],
                  [p.cpu, g.cpu, master.cpu, m.cpu, v.cpu],
                ];
          T.runKernel(op, 'cuda', inCuda, hyper(step));
          T.runKernel(op, 'cpu', inCpu, hyper(step));
        }
        // bf16 moments: where the two round a moment apart (f32 vs f64 arithmetic across a rounding
        // threshold), the moment differs by an ulp of its scale and the master by about lr / 256
        const rounded = momentDType === 'bf16';
        // param: within one bf16 step for the mixed kernel (the masters may round apart near a tie)
        const paramTol = paramDType === 'bf16' ? { atol: 1e-6, rtol: 8e-3 } : { atol: 1e-6, rtol: 1e-5 };
        notes.add(compare(`param [${n}]`, T.cast(p.cuda, 'f32'), T.cast(p.cpu, 'f32'), paramTol));
        if (op === 'adamw_step_mixed')
          notes.add(
            compare(`master [${n}]`, master.cuda, master.cpu, { atol: rounded ? 2e-5 : 1e-6, rtol: 1e-5 }),
          );
        const rtol = rounded ? 8e-3 : 1e-5;
        const f32 = (t: T.Tensor) => T.cast(t, 'f32');
        notes.add(compare(`exp_avg [${n}]`, f32(m.cuda), f32(m.cpu), { atol: rounded ? 8e-4 : 1e-7, rtol }));
        notes.add(
          compare(`exp_avg_sq [${n}]`, f32(v.cuda), f32(v.cpu), { atol: rounded ? 8e-5 : 1e-9, rtol }),
        );
      }
    }) && passed;
}

const copy = copyBandwidth();
console.log(`copy bandwidth (cudaMemcpy D2D, 1 GiB): ${copy.toFixed(0)} GB/s`);
const n = 64 * 2 ** 20;
for (const [op, paramDType, gradDType, momentDType] of VARIANTS) {
  T.tidy(() => {
    const [pi, gi, mi] = [
      paramDType === 'bf16' ? 2 : 4,
      gradDType === 'bf16' ? 2 : 4,
      momentDType === 'bf16' ? 2 : 4,
    ];
    const param = bigRandn([n], paramDType);
    const grad = T.cast(T.mul(bigRandn([n], 'f32'), 1e-2), gradDType);
    const master = T.cast(param, 'f32');
    const m = T.zeros([n], { dtype: momentDType, device: 'cuda' });
    const v = T.zeros([n], { dtype: momentDType, device: 'cuda' });
    const inputs = op === 'adamw_step' ? [param, grad, m, v] : [param, grad, master, m, v];
    const ms = timeMs(() => void T.runKernel(op, 'cuda', inputs, hyper(10)));
    const bytes = op === 'adamw_step' ? n * (2 * pi + gi + 16) : n * (pi + gi + 8 + 4 * mi);
    console.log(
      rate(`${op} param ${paramDType} grad ${gradDType} moments ${momentDType} [64M]`, bytes, ms, copy),
    );
  });
}
process.exit(passed ? 0 : 1);
