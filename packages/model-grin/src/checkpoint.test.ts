// Checkpoint save/load: bit-exact round trip (single file and sharded with an index), bf16/f16
// storage, and ONE error that lists every missing, unexpected or wrong-shape tensor.
// Run: cd packages/model-grin && npx vitest run src/checkpoint
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import {
  bf16BitsToF32Array,
  f32ArrayToBf16Bits,
  Generator,
  loadTensors,
  saveTensors,
} from '@grin-moe/tensor';
import { afterEach, describe, expect, it } from 'vitest';
import { loadModel, saveModel } from './checkpoint.js';
import { parseConfig } from './config.js';
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

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'grin-ckpt-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const values = (t: { toArray(): ArrayLike<number> }) => Array.from(t.toArray());

describe('saveModel / loadModel', () => {
  const model = initRandom(config, new Generator(11));

  it('round-trips f32 bit-exactly, config included', () => {
    const dir = tempDir();
    saveModel(dir, model);
    const loaded = loadModel(dir);
    expect(loaded.config).toEqual(model.config);
    for (const [name, t] of model.namedParameters())
      expect(values(loaded.params.get(name)!), name).toEqual(values(t));
  });

  it('shards with an index when over maxShardBytes, and loads it back', () => {
    const dir = tempDir();
    const files = saveModel(dir, model, { maxShardBytes: 4000 });
    expect(files.length).toBeGreaterThan(2);
    expect(existsSync(join(dir, 'model.safetensors.index.json'))).toBe(true);
    const loaded = loadModel(dir);
    for (const [name, t] of model.namedParameters())
      expect(values(loaded.params.get(name)!), name).toEqual(values(t));
  });

  it('stores bf16 (round to nearest even) and f16, and bf16 -> load -> save is stable', () => {
    const dir = tempDir();
    saveModel(dir, model, { dtype: 'bf16' });
    const loaded = loadModel(dir);
    for (const [name, t] of model.namedParameters()) {
      const expected = Array.from(bf16BitsToF32Array(f32ArrayToBf16Bits(t.toArray() as Float32Array)));
      expect(values(loaded.params.get(name)!), name).toEqual(expected);
    }
    const again = tempDir();
    saveModel(again, loaded, { dtype: 'bf16' });
    expect(readFileSync(join(again, 'model.safetensors'))).toEqual(
      readFileSync(join(dir, 'model.safetensors')),
    );
    const half = tempDir();
    saveModel(half, model, { dtype: 'f16' });
    const fromHalf = loadModel(half, { dtype: 'f64' });
    const name = 'model.layers.0.self_attn.q_proj.weight';
    const a = values(fromHalf.params.get(name)!);
    const b = values(model.params.get(name)!);
    a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThanOrEqual(Math.abs(b[i]!) * 2 ** -11 + 1e-7));
  });

  it('lists every missing, unexpected and wrong-shape tensor in one error', () => {
    const dir = tempDir();
    saveModel(dir, model);
    const tensors = loadTensors(join(dir, 'model.safetensors'));
    delete tensors['model.layers.1.block_sparse_moe.experts.2.w3.weight'];
    delete tensors['lm_head.bias'];
    tensors['model.layers.0.self_attn.k_proj.weight'] = tensors['model.layers.0.self_attn.q_proj.weight']!;
    tensors['model.layers.0.extra.weight'] = tensors['model.norm.bias']!;
    saveTensors(join(dir, 'model.safetensors'), tensors);
    let message = '';
    try {
      loadModel(dir);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/4 problems/);
    expect(message).toMatch(
      /missing: model\.layers\.1\.block_sparse_moe\.experts\.2\.w3\.weight, expected shape \[8,16\]/,
    );
    expect(message).toMatch(/missing: lm_head\.bias, expected shape \[40\]/);
    expect(message).toMatch(
      /wrong shape: model\.layers\.0\.self_attn\.k_proj\.weight in .*model\.safetensors is \[16,16\], expected \[8,16\]/,
    );
    expect(message).toMatch(/unexpected: model\.layers\.0\.extra\.weight/);
  });

  it('names config.json problems with the file', () => {
    const dir = tempDir();
    saveModel(dir, model);
    const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...json, num_key_value_heads: 3 }));
    expect(() => loadModel(dir)).toThrow(
      /config\.json: num_key_value_heads \(3\) must divide num_attention_heads \(4\)/,
    );
  });

  // 42B parameters in f32 are ~157 GiB: more than this machine (skipped on a bigger one).
  it.runIf(totalmem() < 150 * 2 ** 30)(
    'refuses a model that cannot fit in host memory, before reading weights',
    () => {
      const dir = tempDir();
      const fixture = join(__dirname, '..', 'fixtures', 'gqa2-window5');
      const json = JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8'));
      writeFileSync(
        join(dir, 'config.json'),
        JSON.stringify({
          ...json,
          vocab_size: 32064,
          hidden_size: 4096,
          intermediate_size: 6400,
          num_hidden_layers: 32,
          num_attention_heads: 32,
          num_key_value_heads: 8,
          num_local_experts: 16,
        }),
      );
      copyFileSync(join(fixture, 'model.safetensors'), join(dir, 'model.safetensors'));
      expect(() => loadModel(dir)).toThrow(
        /needs about .* GiB \(41\.\d+B parameters in f32\) but this machine has/,
      );
    },
  );
});
