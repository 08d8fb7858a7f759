// The optimizer step on the side stream (src/side-stream.ts) against the same step on the main
// stream: a small bf16 language model (embedding 32000 x 512, layerNorm, two matmuls, cross-
// entropy) trains 4 steps each way from the same weights, with the next step's forward enqueued
// right behind the side step (no sync). The kernels are the same, so losses, weights, master
// weights and moments must be equal bit for bit. The parameters are stepped in reverse use order
// (the embedding, read first by the forward, last), so a missing fence would let the forward read
// the embedding before its update; the forward's allocations right behind the step would land in
// the gradients the side stream still reads if their frees were not deferred.
import * as T from '@grin-moe/tensor';
import { cudaSynchronize, onSideStream, pendingFreeCount } from '../../src/index.js';
import { type Case, randint, randn, scoped, valuesOf } from './harness.js';

const [V, D, N] = [32000, 512, 512];
const SHAPES: Record<string, number[]> = {
  out: [D, V],
  w1: [D, 4 * D],
  w2: [4 * D, D],
  lnw: [D],
  emb: [V, D],
};

/** Weights and batches drawn once, so both runs start from and see the same values. */
function inputs(steps: number) {
  const init = Object.entries(SHAPES).map(
    ([k, s]) => randn(s, 'f32', k === 'lnw' ? 0.1 : 0.02, k === 'lnw' ? 1 : 0).cuda,
  );
  const batches = Array.from(
    { length: steps },
    () => [randint([N], 0, V).cuda, randint([N], 0, V).cuda] as const,
  );
  return { init, batches };
}

function train(side: boolean, { init, batches }: ReturnType<typeof inputs>) {
  const params = init.map((t) => T.cast(t, 'bf16').setRequiresGrad());
  const [out, w1, w2, lnw, emb] = params as [T.Tensor, T.Tensor, T.Tensor, T.Tensor, T.Tensor];
  const optimizer = new T.AdamW(params, { lr: 1e-3, weightDecay: 0.1 });
  const losses: number[] = [];
  let deferred = 0;
  for (const [ids, targets] of batches) {
    const loss = T.tidy(() => {
      const x = T.embedding(emb, ids);
      const h = T.layerNorm(x, lnw);
      const y = T.add(x, T.matmul(T.silu(T.matmul(h, w1)), w2));
      const l = T.crossEntropy(T.cast(T.matmul(y, out), 'f32'), targets);
      l.backward();
      return l;
    });
    losses.push(loss.item() as number);
    const { scale } = T.gradNormScale(params, 1.0);
    if (side) onSideStream('cuda', (fence) => optimizer.stepOnce({ gradScale: scale, afterParam: fence }));
    else optimizer.stepOnce({ gradScale: scale });
    optimizer.zeroGrad();
    scale.dispose();
    if (side) deferred = Math.max(deferred, pendingFreeCount());
  }
  cudaSynchronize();
  const state = optimizer.stateDict().tensors;
  return { losses, params, state, deferred, left: pendingFreeCount() };
}

export const cases: Case[] = [
  {
    name: 'AdamW on the side stream (fenced parameters, deferred gradient frees) equals the main-stream step bit for bit: 4 bf16 steps',
    run: () =>
      scoped(() => {
        const data = inputs(4);
        const main = train(false, data);
        const side = train(true, data);
        if (side.deferred === 0) throw new Error('no gradient free was deferred: the side path did not run');
        if (side.left !== 0) throw new Error(`${side.left} deferred frees left after cudaSynchronize`);
        if (main.losses.join() !== side.losses.join())
          throw new Error(`losses differ: main ${main.losses.join(', ')}, side ${side.losses.join(', ')}`);
        const differs = (a: T.Tensor, b: T.Tensor) => {
          const [x, y] = [valuesOf(T.cast(a, 'f32')), valuesOf(T.cast(b, 'f32'))];
          for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
          return -1;
        };
        main.params.forEach((p, i) => {
          const at = differs(p, side.params[i]!);
          if (at >= 0) throw new Error(`parameter ${i} differs at element ${at}`);
        });
        for (const k of Object.keys(main.state)) {
          const at = differs(main.state[k]!, side.state[k]!);
          if (at >= 0) throw new Error(`optimizer state ${k} differs at element ${at}`);
        }
        return `losses ${side.losses.map((l) => l.toFixed(4)).join(', ')} equal; up to ${side.deferred} gradient frees deferred`;
      }),
  },
];
