// A GrinModel split into pipeline stages under the 1F1B step (@grin-moe/parallel's pipelineStep, over
// the local group in this process) against the unsplit model: 2 and 3 stages of a 3-layer model,
// 4 micro-batches a step, 20 AdamW steps; every step's loss and every parameter's gradient within
// 1e-5 relative. Eval-mode routing (no random draws), cross-entropy only. Also the layer split.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-stage.test.ts
import { initRandom, nextTokenLoss, parseConfig } from '@grin-moe/model-grin';
import { localWorld, pipelineStep } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { stageForward, stageSlice } from './pipeline-stage.js';

const config = parseConfig({
  vocab_size: 30,
  hidden_size: 16,
  intermediate_size: 12,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_local_experts: 4,
  sliding_window: 3,
  initializer_range: 0.3,
  attention_bias: true,
  lm_head_bias: true,
  rope_theta: 10000,
});
const micros = 4;
const [B, S] = [2, 6];

function batch(step: number, micro: number): T.Tensor {
  const ids = Array.from({ length: B * S }, (_, i) => (step * 131 + micro * 17 + i * 7) % 30);
  return T.tensor(ids, { shape: [B, S], dtype: 'i32' });
}

describe('pipeline stages of a GrinModel', () => {
  it('splits the layers evenly, earlier stages taking the extra ones', () => {
    expect([0, 1].map((s) => stageSlice(3, 2, s)).map((x) => [x.first, x.end])).toEqual([
      [0, 2],
      [2, 3],
    ]);
    expect([0, 1, 2].map((s) => stageSlice(3, 3, s).end)).toEqual([1, 2, 3]);
    expect(() => stageSlice(3, 4, 0)).toThrow(/--pp 4: needs 1 to 3 stages/);
  });

  it.each([2, 3])(
    '%i stages: 20 steps of losses and gradients match the unsplit model',
    async (stages) => {
      const reference = initRandom(config, new T.Generator(4));
      const split = initRandom(config, new T.Generator(4));
      const group = localWorld(stages);
      const optimizers = [reference, split].map((m) => new T.AdamW(m.parameters(), { lr: 0.01 }));
      let first = 0;
      let last = 0;
      for (let step = 0; step < 20; step++) {
        let expected = 0;
        for (let m = 0; m < micros; m++) {
          const ids = batch(step, m);
          const loss = T.div(
            nextTokenLoss(reference.forward(ids, { training: false }).logits_BSV, ids),
            micros,
          );
          expected += loss.item();
          loss.backward();
        }
        const results = await Promise.all(
          group.map((g, s) => {
            const slice = stageSlice(config.numHiddenLayers, stages, s);
            return pipelineStep(
              g,
              {
                forward(micro, input) {
                  const ids = batch(step, micro);
                  const { out } = stageForward(split, slice, ids, input, { training: false });
                  return s === stages - 1 ? T.div(nextTokenLoss(out, ids), micros) : out;
                },
                inputShape: () => [B, S, config.hiddenSize],
              },
              micros,
            );
          }),
        );
        const got = results[stages - 1]!.reduce((a, b) => a + b, 0);
        expect(Math.abs(got - expected) / expected, `step ${step} loss`).toBeLessThan(1e-5);
        for (const [name, p] of split.namedParameters()) {
          const a = p.grad!.toArray() as Float32Array;
          const b = reference.params.get(name)!.grad!.toArray() as Float32Array;
          const scale = Math.max(1e-6, ...b.map(Math.abs));
          const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
          expect(worst / scale, `step ${step} ${name}`).toBeLessThan(1e-5);
        }
        for (const optimizer of optimizers) {
          optimizer.stepOnce();
          optimizer.zeroGrad();
        }
        if (step === 0) first = expected;
        last = expected;
      }
      expect(last).toBeLessThan(first - 0.05); // training moved: the match is not trivial
    },
    60_000,
  );
});
