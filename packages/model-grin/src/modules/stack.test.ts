// stackExpertWeights: w1 and w3 of every expert end up adjacent in one storage (w3 right after
// w1), with the same values, names and requiresGrad, and the model computes the same loss and
// gradients as before. Run: cd packages/model-grin && npx vitest run src/modules/stack
import { AdamW, Generator, tidy } from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.js';
import { initRandom } from '../init.js';
import { idsTensor, nextTokenLoss } from '../model.js';
import { stackExpertWeights } from './stack.js';

const config = parseConfig({
  vocab_size: 20,
  hidden_size: 8,
  intermediate_size: 6,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  num_local_experts: 3,
});

describe('stackExpertWeights', () => {
  it('makes w1 and w3 adjacent views with the same values, and leaves the loss and gradients unchanged', () => {
    const ids = idsTensor([[1, 4, 7, 2, 9, 3]]);
    const plain = initRandom(config, new Generator(4));
    const stacked = initRandom(config, new Generator(4));
    for (const m of [plain, stacked]) for (const p of m.params.values()) p.setRequiresGrad();
    stackExpertWeights(stacked.params, config);
    const w1 = stacked.params.get('model.layers.1.block_sparse_moe.experts.2.w1.weight')!;
    const w3 = stacked.params.get('model.layers.1.block_sparse_moe.experts.2.w3.weight')!;
    expect(w3.storage).toBe(w1.storage);
    expect(w3.offset).toBe(w1.offset + w1.size);
    expect([w1.shape, w1.requiresGrad, w1.name]).toEqual([
      [6, 8],
      true,
      'model.layers.1.block_sparse_moe.experts.2.w1.weight',
    ]);
    expectAllClose(w3, plain.params.get('model.layers.1.block_sparse_moe.experts.2.w3.weight')!, {
      atol: 0,
      rtol: 0,
    });
    const losses = [plain, stacked].map((m) => {
      const loss = tidy(() => nextTokenLoss(m.forward(ids, { training: false }).logits_BSV, ids));
      loss.backward();
      return loss.item();
    });
    expect(losses[1]).toBe(losses[0]);
    for (const [name, p] of plain.params)
      if (p.grad) expectAllClose(stacked.params.get(name)!.grad!, p.grad, { atol: 1e-7, rtol: 1e-6 });
  });

  it('trains in place: AdamW steps on the stacked views equal those on separate tensors', () => {
    const ids = idsTensor([[3, 1, 4, 1, 5, 9, 2, 6]]);
    const models = [initRandom(config, new Generator(6)), initRandom(config, new Generator(6))];
    for (const m of models) for (const p of m.params.values()) p.setRequiresGrad();
    stackExpertWeights(models[1]!.params, config);
    const optimizers = models.map((m) => new AdamW([...m.params.values()], { lr: 1e-2 }));
    for (let step = 0; step < 3; step++)
      models.forEach((m, i) => {
        tidy(() => nextTokenLoss(m.forward(ids, { training: false }).logits_BSV, ids)).backward();
        optimizers[i]!.stepOnce();
        optimizers[i]!.zeroGrad();
      });
    for (const [name, p] of models[0]!.params)
      expectAllClose(models[1]!.params.get(name)!, p, { atol: 0, rtol: 0 });
    const w1 = models[1]!.params.get('model.layers.0.block_sparse_moe.experts.1.w1.weight')!;
    const w3 = models[1]!.params.get('model.layers.0.block_sparse_moe.experts.1.w3.weight')!;
    expect(w3.storage).toBe(w1.storage); // still one block after the updates
  });
});
