// Non-finite weights: loadModel refuses a NaN or an infinity in any tensor (f32 and bf16 on disk,
// loaded as f32 or f64), naming the file and the tensor, and still loads finite weights bit-exactly;
// generate stops with a GenerationError when the logits are not finite instead of emitting token 0.
// Run: cd packages/model-grin && npx vitest run src/non-finite
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyInPlace, Generator, loadTensors, noGrad, tensor, writeSafetensors } from '@grin-moe/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from './checkpoint.js';
import { parseConfig } from './config.js';
import { GenerationError, generate } from './generate.js';
import { initRandom } from './init.js';

const config = parseConfig({
  vocab_size: 40,
  hidden_size: 16,
  intermediate_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_local_experts: 3,
  sliding_window: 6,
  attention_bias: true,
  lm_head_bias: true,
  rope_theta: 10000,
});

const root = mkdtempSync(join(tmpdir(), 'grin-nonfinite-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Saves the model, then rewrites one tensor of model.safetensors with `value` at flat index 3. */
function savedWith(name: string, value: number, dtype: 'f32' | 'bf16', tag: string): string {
  const dir = join(root, tag);
  saveModel(dir, initRandom(config, new Generator(5)), { dtype });
  const file = join(dir, 'model.safetensors');
  const tensors = loadTensors(file);
  const entries = Object.entries(tensors).map(([key, t]) => {
    const data = Float32Array.from(t.toArray() as ArrayLike<number>);
    if (key === name) data[3] = value;
    return [key, { dtype: dtype === 'bf16' ? 'BF16' : 'F32', shape: [...t.shape], data }] as const;
  });
  writeSafetensors(file, entries, { format: 'pt' });
  return dir;
}

describe('loadModel refuses non-finite weights', () => {
  it.each([
    ['model.layers.1.self_attn.q_proj.weight', Number.NaN, 'f32', 'f32'],
    ['lm_head.bias', Number.POSITIVE_INFINITY, 'f32', 'f64'],
    ['model.layers.0.block_sparse_moe.experts.2.w2.weight', Number.NEGATIVE_INFINITY, 'bf16', 'f32'],
  ] as const)('%s = %s (%s on disk, loaded as %s)', (name, value, disk, as) => {
    const dir = savedWith(name, value, disk, `${name}-${disk}-${as}`);
    expect(() => loadModel(dir, { dtype: as })).toThrow(
      new RegExp(
        `model\\.safetensors: tensor '${name.replace(/\./g, '\\.')}' is not finite: value ${value} at flat index 3`,
      ),
    );
  });

  it('loads finite weights unchanged (the check does not touch values)', () => {
    const model = initRandom(config, new Generator(9));
    const dir = join(root, 'finite');
    saveModel(dir, model);
    const loaded = loadModel(dir);
    for (const [name, p] of model.namedParameters())
      expect(Array.from(loaded.params.get(name)!.toArray() as Float32Array)).toEqual(
        Array.from(p.toArray() as Float32Array),
      );
  });
});

describe('generate stops on non-finite logits', () => {
  it('throws GenerationError naming the step instead of emitting a token', () => {
    const model = initRandom(config, new Generator(3));
    const good = generate(model, [1, 2, 3], { maxNewTokens: 4, stopTokens: [] });
    expect(good.tokens).toHaveLength(4);
    const bias = model.params.get('lm_head.bias')!;
    const poisoned = Float32Array.from(bias.toArray() as Float32Array);
    poisoned[7] = Number.NaN;
    noGrad(() => copyInPlace(bias, tensor(poisoned, { shape: [...bias.shape] })));
    const emitted: number[] = [];
    expect(() =>
      generate(model, [1, 2, 3], { maxNewTokens: 4, stopTokens: [], onToken: (t) => emitted.push(t) }),
    ).toThrow(GenerationError);
    expect(() => generate(model, [1, 2, 3], { maxNewTokens: 4, stopTokens: [] })).toThrow(
      /logits for new token 0 \(position 3\) are not finite \(NaN at token id 7\)/,
    );
    expect(emitted).toEqual([]);
  });
});
