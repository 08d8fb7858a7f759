// The 1F1B pipeline step against one process: 4 layers (linear + LayerNorm) split into 2 or 4
// stages over the local group, 4 micro-batches a step, 20 SGD steps; every step's loss and every
// layer's gradient match the unsplit model within 1e-5 relative. Also the schedule's order.
// Test: cd packages/parallel && npx vitest run src/pipeline.test.ts
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { localWorld } from './local.js';
import { oneForwardOneBackward, type PipelineStage, pipelineStep } from './pipeline.js';

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

  it.each([2, 4])('%i stages: 20 steps of losses and gradients match one process', async (stages) => {
    const reference = weights(3);
    const split = weights(3);
    const perStage = layers / stages;
    const group = localWorld(stages);
    const optimizers = [reference, split].map((params) => new T.SGD(params, { lr: 0.1 }));
    for (let step = 0; step < 20; step++) {
      let expected = 0;
      for (let m = 0; m < micros; m++) {
        let x = batch(step, m);
        for (const w of reference) x = layer(x, w);
        const l = loss(x);
        expected += Number((l.toArray() as Float32Array)[0]);
        l.backward();
      }
      const results = await Promise.all(
        group.map((g, s) => {
          const mine = split.slice(s * perStage, (s + 1) * perStage);
          const stage: PipelineStage = {
            forward(micro, input) {
              let x = input ?? batch(step, micro);
              for (const w of mine) x = layer(x, w);
              return s === stages - 1 ? loss(x) : x;
            },
            inputShape: () => [rows, width],
          };
          return pipelineStep(g, stage, micros);
        }),
      );
      const losses = results[stages - 1]!;
      expect(losses).toHaveLength(micros);
      const got = losses.reduce((a, b) => a + b, 0);
      expect(Math.abs(got - expected) / expected).toBeLessThan(1e-5);
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
  });
});
