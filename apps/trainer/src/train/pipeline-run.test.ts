// A pipeline stage's preparation: it keeps only its own parameters and their whole-model numbers,
// its draw counts add up to what the whole model's forward draws (NEFTune on the first stage
// included), a checkpoint's optimizer state maps onto its parameters, and a tied model is refused.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-run.test.ts
import { type GrinModel, initRandom, parseConfig } from '@grin-moe/model-grin';
import { localWorld } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { mergeConfig } from './config.js';
import { tinyConfig } from './fixtures.js';
import { pipelineParallel } from './pipeline-parallel.js';
import { preparePipelineStage, stageOptimizerState } from './pipeline-run.js';

const modelConfig = (tied = false) =>
  parseConfig({
    vocab_size: 30,
    hidden_size: 16,
    intermediate_size: 12,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_local_experts: 4,
    initializer_range: 0.3,
    tie_word_embeddings: tied,
  });
// batch 4 x seqLen 16; NEFTune and expert dropout draw too.
const config = mergeConfig(
  tinyConfig('/tmp', '/tmp/none.jsonl'),
  { regularize: { neftuneAlpha: 5, expertDropout: 0.1 } },
  'test',
);

function stages(model: () => GrinModel) {
  const world = localWorld(2);
  return world.map((g) =>
    preparePipelineStage(config, model(), pipelineParallel(g, { dp: 1, pp: 2, tp: 1 })),
  );
}

describe('pipeline stage preparation', () => {
  it('keeps its own parameters, numbered over the whole model, and draws its share of the stream', () => {
    const whole = initRandom(modelConfig(), new T.Generator(1));
    const names = [...whole.params.keys()];
    const [first, last] = stages(() => initRandom(modelConfig(), new T.Generator(1)));
    expect([first!.slice.first, first!.slice.end, last!.slice.first, last!.slice.end]).toEqual([0, 2, 2, 3]);
    expect([...first!.params.keys(), ...last!.params.keys()].sort()).toEqual([...names].sort());
    expect([...first!.params.keys()]).toContain('model.embed_tokens.weight');
    expect([...last!.params.keys()]).toEqual(expect.arrayContaining(['model.norm.weight', 'lm_head.weight']));
    expect([...last!.params.keys()].every((n) => !n.startsWith('model.layers.0.'))).toBe(true);
    for (const run of [first!, last!])
      run.wholeIndex.forEach((w, j) => expect(names[w]).toBe([...run.params.keys()][j]));
    // What the whole model's training forward draws, stage by stage.
    const generator = new T.Generator(0);
    T.noGrad(() =>
      whole.forward(T.zeros([4, 16], { dtype: 'i32' }), { training: true, generator, ...config.regularize }),
    );
    expect(first!.draws.perMicro).toBe(generator.counter);
    expect(last!.draws.perMicro).toBe(generator.counter);
    expect(first!.draws.before).toBe(0n);
    expect(last!.draws.before).toBe(first!.draws.own);
    expect(first!.draws.own + last!.draws.own).toBe(generator.counter);
    // Layers draw alike, and the first stage adds NEFTune's draw: 2 layers + NEFTune vs 1 layer.
    expect(first!.draws.own).toBeGreaterThan(2n * last!.draws.own);
  });

  it('takes its own entries of a whole-model optimizer state', () => {
    const [, last] = stages(() => initRandom(modelConfig(), new T.Generator(1)));
    const whole = { step: 7, tensors: {} as Record<string, T.Tensor> };
    for (const w of last!.wholeIndex) {
      whole.tensors[`exp_avg.${w}`] = T.full([1], w);
      whole.tensors[`exp_avg_sq.${w}`] = T.full([1], -w);
    }
    whole.tensors['exp_avg.0'] = T.full([1], 1000); // the embedding's: another stage's
    const state = stageOptimizerState(whole, last!);
    expect(state.step).toBe(7);
    expect(Object.keys(state.tensors)).toHaveLength(2 * last!.wholeIndex.length);
    last!.wholeIndex.forEach((w, j) => {
      expect(state.tensors[`exp_avg.${j}`]!.item()).toBe(w);
      expect(state.tensors[`exp_avg_sq.${j}`]!.item()).toBe(-w);
    });
  });

  it('refuses a model whose lm_head is tied to the embedding', () => {
    expect(() => stages(() => initRandom(modelConfig(true), new T.Generator(1)))).toThrow(
      /train --pp 2: the model ties lm_head to the embedding \(tie_word_embeddings\), which would live on the first and the last stage; untie it or use --pp 1/,
    );
  });
});
