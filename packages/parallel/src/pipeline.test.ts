// The 1F1B pipeline step against one process: 4 layers (linear + LayerNorm) split into 2 or 4
// stages over the local group, 4 micro-batches a step, 20 SGD steps; every step's loss and every
// layer's gradient match the unsplit model within 1e-5 relative, also when every stage adds a loss
// term of its own (a penalty on its output, as its layers' balance loss would be), and when every
// stage runs its own asynchronous backward segment by segment (each half-layer on a fresh leaf, an
// await between segments, as a tensor-parallel stage's backward waits on its all-reduces). Also the
// schedule's order and the forward-only pass.
// Test: cd packages/parallel && npx vitest run src/pipeline.test.ts
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { localWorld } from './local.js';
import { oneForwardOneBackward, type PipelineStage, pipelineForward, pipelineStep } from './pipeline.js';

const layers = 4;
const micros = 4;
const rows = 3;
const width = 8;

function weights(seed: number): T.Tensor[] {
  const generator = new T.Generator(seed);
  return Array.from({ length: layers }, () =>
    T.randn([width, width], { generator, std: 0.5 }).setRequiresGrad(true),
  );
}

function batch(step: number, micro: number): T.Tensor {
  return T.randn([rows, width], { generator: new T.Generator(1000 * step + micro) });
}

const layer = (x: T.Tensor, w: T.Tensor) => T.layerNorm(T.linear(x, w));
const loss = (x: T.Tensor) => T.div(T.mean(T.square(x)), micros);

describe('pipeline parallel (1F1B)', () => {
  it('orders warm-up forwards, one forward one backward, then the drain', () => {
    expect(oneForwardOneBackward(0, 2, 4).join('')).toBe('FFBFBFBB');
    expect(oneForwardOneBackward(1, 2, 4).join('')).toBe('FBFBFBFB');
    expect(oneForwardOneBackward(0, 4, 2).join('')).toBe('FFBB');
  });

  it.each([
    [2, 0],
    [4, 0],
    [2, 0.3],
    [4, 0.3],
  ])(
    '%i stages, own-loss weight %s: 20 steps of losses and gradients match one process',
    async (stages, weight) => {
      const reference = weights(3);
      const split = weights(3);
      const perStage = layers / stages;
      const group = localWorld(stages);
      const optimizers = [reference, split].map((params) => new T.SGD(params, { lr: 0.1 }));
      // Each stage's own term: a penalty on the output of its last layer (the unsplit model adds the
      // same penalties at the same places).
      const penalty = (x: T.Tensor) => T.div(T.mul(T.mean(T.square(T.sub(x, 0.5))), weight), micros);
      for (let step = 0; step < 20; step++) {
        let expected = 0;
        for (let m = 0; m < micros; m++) {
          let x = batch(step, m);
          let l: T.Tensor | null = null;
          reference.forEach((w, i) => {
            x = layer(x, w);
            const boundary = (i + 1) % perStage === 0 && i < layers - 1;
            if (boundary && weight) l = l ? T.add(l, penalty(x)) : penalty(x);
          });
          const total: T.Tensor = l ? T.add(loss(x), l) : loss(x);
          expected += Number((total.toArray() as Float32Array)[0]);
          total.backward();
        }
        const results = await Promise.all(
          group.map((g, s) => {
            const mine = split.slice(s * perStage, (s + 1) * perStage);
            const stage: PipelineStage = {
              forward(micro, input) {
                let x = input ?? batch(step, micro);
                for (const w of mine) x = layer(x, w);
                if (s === stages - 1) return loss(x);
                return weight ? { activation: x, loss: penalty(x) } : x;
              },
              inputShape: () => [rows, width],
            };
            return pipelineStep(g, stage, micros);
          }),
        );
        const losses = results[stages - 1]!;
        expect(losses).toHaveLength(micros);
        // The stages' own terms are not in the last stage's losses: add them as the trainer does.
        const got = losses.reduce((a, b) => a + b, 0);
        if (!weight) expect(Math.abs(got - expected) / expected).toBeLessThan(1e-5);
        for (let l = 0; l < layers; l++) {
          const a = split[l]!.grad!.toArray() as Float32Array;
          const b = reference[l]!.grad!.toArray() as Float32Array;
          const scale = Math.max(...b.map(Math.abs));
          const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
          expect(worst / scale, `step ${step} layer ${l}`).toBeLessThan(1e-5);
        }
        for (const optimizer of optimizers) {
          optimizer.stepOnce();
          optimizer.zeroGrad();
        }
      }
    },
  );

  it.each([2, 4])(
    '%i stages with their own async backward, segment by segment: 20 steps of gradients match one process',
    async (stages) => {
      const reference = weights(3);
      const split = weights(3);
      const perStage = layers / stages;
      const group = localWorld(stages);
      const optimizers = [reference, split].map((params) => new T.SGD(params, { lr: 0.1 }));
      for (let step = 0; step < 20; step++) {
        for (let m = 0; m < micros; m++) {
          let x = batch(step, m);
          for (const w of reference) x = layer(x, w);
          loss(x).backward();
        }
        await Promise.all(
          group.map((g, s) => {
            const mine = split.slice(s * perStage, (s + 1) * perStage);
            // Per micro-batch: each layer's input leaf (null: the batch itself) and its output.
            const records = new Map<number, Array<{ leaf: T.Tensor | null; out: T.Tensor }>>();
            const stage: PipelineStage = {
              forward(micro, input) {
                const record: Array<{ leaf: T.Tensor | null; out: T.Tensor }> = [];
                let x = input ?? batch(step, micro);
                let leaf = input;
                // Two segments a layer (its linear, its LayerNorm), so every stage has a cut inside.
                const segments = mine.flatMap((w) => [(v: T.Tensor) => T.linear(v, w), T.layerNorm]);
                segments.forEach((segment, i) => {
                  const out = segment(x);
                  const lastSegment = i === segments.length - 1;
                  record.push({ leaf, out: lastSegment && s === stages - 1 ? loss(out) : out });
                  if (!lastSegment) {
                    leaf = out.detach().setRequiresGrad(true);
                    x = leaf;
                  }
                });
                records.set(micro, record);
                return record.at(-1)!.out;
              },
              async backward(micro, upstream) {
                const record = records.get(micro)!;
                records.delete(micro);
                let gradient = upstream;
                for (const { leaf, out } of [...record].reverse()) {
                  await new Promise((resolve) => setImmediate(resolve)); // as an all-reduce would
                  if (gradient) T.backward(out, gradient);
                  else out.backward();
                  gradient = leaf ? leaf.grad : null;
                  if (leaf) leaf.grad = null;
                }
                return gradient;
              },
              inputShape: () => [rows, width],
            };
            return pipelineStep(g, stage, micros);
          }),
        );
        for (let l = 0; l < layers; l++) {
          const a = split[l]!.grad!.toArray() as Float32Array;
          const b = reference[l]!.grad!.toArray() as Float32Array;
          const scale = Math.max(...b.map(Math.abs));
          const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
          expect(worst / scale, `step ${step} layer ${l}`).toBeLessThan(1e-5);
        }
        for (const optimizer of optimizers) {
          optimizer.stepOnce();
          optimizer.zeroGrad();
        }
      }
    },
  );

  it.each([2, 4])(
    '%i stages forward only: the last stage returns what one process computes',
    async (stages) => {
      const model = weights(5);
      const perStage = layers / stages;
      const expected = Array.from({ length: micros }, (_, m) =>
        T.noGrad(() => {
          let x = batch(0, m);
          for (const w of model) x = layer(x, w);
          return Number((loss(x).toArray() as Float32Array)[0]);
        }),
      );
      const group = localWorld(stages);
      const results = await Promise.all(
        group.map((g, s) =>
          pipelineForward(
            g,
            {
              forward: (micro, input) =>
                T.noGrad(() => {
                  let x = input ?? batch(0, micro);
                  for (const w of model.slice(s * perStage, (s + 1) * perStage)) x = layer(x, w);
                  return s === stages - 1 ? loss(x) : x;
                }),
              inputShape: () => [rows, width],
            },
            micros,
          ),
        ),
      );
      results.slice(0, -1).forEach((r) => expect(r).toEqual([]));
      results.at(-1)!.forEach((v, m) => expect(Math.abs(v - expected[m]!) / expected[m]!).toBeLessThan(1e-6));
    },
  );
});
