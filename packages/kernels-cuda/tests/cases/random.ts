// GPU-vs-CPU checks of draws in kernels: rand / randn / randExponential on cuda give the CPU
// stream's f32 values bit for bit for the same seed (and leave the generator at the same counter),
// and the fused jitter random_scale equals mul(x, cast(rand)) with its gradient regenerated.
import * as T from '@grin-moe/tensor';
import { type Case, compare, Notes, randn, scoped, valuesOf } from './harness.js';

function sameBits(label: string, cuda: T.Tensor, cpu: T.Tensor): string {
  const a = valuesOf(cuda);
  const b = valuesOf(cpu);
  if (a.length !== b.length) throw new Error(`${label}: ${a.length} values, reference ${b.length}`);
  let differ = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++)
    if (!Object.is(a[i], b[i])) {
      differ++;
      if (first < 0) first = i;
    }
  if (differ > 0)
    throw new Error(
      `${label}: ${differ} of ${a.length} values differ (first at ${first}: ${a[first]} vs ${b[first]})`,
    );
  return `${a.length} values bit-identical`;
}

const draws: Array<[string, (o: T.RandomOptions) => T.Tensor]> = [
  ['rand U(-2, 3) [1000003]', (o) => T.rand([1000003], { ...o, low: -2, high: 3 })],
  ['rand U(0.99, 1.01) [4096, 257]', (o) => T.rand([4096, 257], { ...o, low: 0.99, high: 1.01 })],
  ['randn N(0.5, 2) [333333] (odd)', (o) => T.randn([333333], { ...o, mean: 0.5, std: 2 })],
  ['randExponential rate 1 [1000000]', (o) => T.randExponential([1000000], o)],
  ['randExponential rate 3 [7]', (o) => T.randExponential([7], { ...o, rate: 3 })],
];

export const cases: Case[] = [
  ...draws.map(
    ([name, draw]): Case => ({
      name: `${name}: bit-identical to the CPU stream, same counter after`,
      run: () =>
        scoped(() => {
          const onCuda = new T.Generator(424242);
          const onCpu = new T.Generator(424242);
          onCuda.reserveBlocks(5); // start mid-stream
          onCpu.reserveBlocks(5);
          const note = sameBits(
            name,
            draw({ generator: onCuda, device: 'cuda' }),
            draw({ generator: onCpu }),
          );
          if (onCuda.counter !== onCpu.counter)
            throw new Error(
              `${name}: counter ${onCuda.counter} after the cuda draw, ${onCpu.counter} on the CPU`,
            );
          return note;
        }),
    }),
  ),
  {
    name: 'random_scale f32 [2048, 1031]: equals the CPU kernel bit for bit; gradient = g * U',
    run: () =>
      scoped(() => {
        const x = randn([2048, 1031]);
        const xc = x.cuda.detach().setRequiresGrad();
        const xp = x.cpu.detach().setRequiresGrad();
        const yc = T.randomScale(xc, { low: 0.99, high: 1.01, generator: new T.Generator(7) });
        const yp = T.randomScale(xp, { low: 0.99, high: 1.01, generator: new T.Generator(7) });
        const notes = new Notes();
        sameBits('forward', yc, yp);
        const g = randn([2048, 1031]);
        T.backward(yc, g.cuda);
        T.backward(yp, g.cpu);
        notes.add(compare('grad', xc.grad!, xp.grad!, { atol: 0, rtol: 0 }));
        return `forward bit-identical; ${notes}`;
      }),
  },
  {
    name: 'random_scale bf16 [4096, 4096]: equals cuda mul(x, cast(rand, bf16)) bit for bit',
    run: () =>
      scoped(() => {
        const x = randn([4096, 4096], 'bf16');
        const fused = T.randomScale(x.cuda, { low: 0.99, high: 1.01, generator: new T.Generator(11) });
        const noise = T.rand([4096, 4096], {
          low: 0.99,
          high: 1.01,
          device: 'cuda',
          generator: new T.Generator(11),
        });
        return sameBits('bf16 jitter', fused, T.mul(x.cuda, T.cast(noise, 'bf16')));
      }),
  },
  ...(['f32', 'bf16'] as const).flatMap((dtype) =>
    [1, 4].map(
      (skip): Case => ({
        // offset 1: not aligned to 4 values, so value by value; offset 4: whole blocks in one access,
        // then a last block of 2 values
        name: `random_scale ${dtype} on a view at offset ${skip} of ${4006 - skip} values: equals mul(x, cast(rand)) bit for bit`,
        run: () =>
          scoped(() => {
            const flat = randn([4006], dtype).cuda;
            const x = T.split(flat, [skip, 4006 - skip])[1]!;
            const fused = T.randomScale(x, { low: 0.99, high: 1.01, generator: new T.Generator(13) });
            const noise = T.rand([4006 - skip], {
              low: 0.99,
              high: 1.01,
              device: 'cuda',
              generator: new T.Generator(13),
            });
            return sameBits(`${dtype} view`, fused, T.mul(x, T.cast(noise, dtype)));
          }),
      }),
    ),
  ),
];
