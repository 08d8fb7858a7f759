// Sharded Hugging Face checkpoints: a 3-shard round trip with its index, the single-file case, index
// validation errors, and cleanup when a directory is overwritten with a differently sharded checkpoint.
// Run: cd packages/tensor && npx vitest run src/io/sharded.test.ts
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsError } from './safetensors-format.js';
import type { TensorEntry } from './safetensors-write.js';
import { openCheckpoint, readShardIndex, writeShardedSafetensors } from './sharded.js';

const root = mkdtempSync(join(tmpdir(), 'grin-sharded-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const freshDir = () => mkdtempSync(join(root, 'checkpoint-'));

const f32 = (count: number, start: number): TensorEntry => ({
  dtype: 'F32',
  shape: [count],
  data: Float32Array.from({ length: count }, (_, i) => start + i),
});

// 4 tensors of 40, 40, 24, 64 bytes; a 80-byte limit packs them as [a, b] [c] [d].
const entries = {
  'model.layers.0.a': f32(10, 0),
  'model.layers.0.b': f32(10, 100),
  'model.layers.1.c': {
    dtype: 'BF16',
    shape: [3, 4],
    data: Float32Array.from({ length: 12 }, (_, i) => i / 4),
  },
  'lm_head.weight': f32(16, 1000),
} satisfies Record<string, TensorEntry>;

const shardName = (k: number) => `model-0000${k}-of-00003.safetensors`;

function expectError(run: () => unknown, fragments: string[]) {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SafetensorsError);
  for (const fragment of fragments) expect((caught as Error).message).toContain(fragment);
}

describe('writeShardedSafetensors + openCheckpoint', () => {
  it('round trips across 3 shards with a transformers-style index', () => {
    const dir = freshDir();
    const result = writeShardedSafetensors(dir, entries, { maxShardBytes: 80, metadata: { step: '7' } });
    expect(result).toEqual({
      files: [shardName(1), shardName(2), shardName(3), 'model.safetensors.index.json'],
      totalSize: 40 + 40 + 24 + 64,
    });
    expect(readdirSync(dir).sort()).toEqual([
      shardName(1),
      shardName(2),
      shardName(3),
      'model.safetensors.index.json',
    ]);

    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(index).toEqual({
      metadata: { total_size: 168 },
      weight_map: {
        'lm_head.weight': shardName(3),
        'model.layers.0.a': shardName(1),
        'model.layers.0.b': shardName(1),
        'model.layers.1.c': shardName(2),
      },
    });
    expect(Object.keys(index.weight_map)).toEqual(Object.keys(index.weight_map).sort());

    const checkpoint = openCheckpoint(dir);
    expect(checkpoint.names().sort()).toEqual(Object.keys(entries).sort());
    expect(checkpoint.metadata).toEqual({ format: 'pt', step: '7' });
    expect(checkpoint.index?.shards).toEqual([shardName(3), shardName(1), shardName(2)]);
    expect(checkpoint.fileOf('model.layers.1.c')).toBe(join(dir, shardName(2)));
    expect(checkpoint.read('model.layers.0.a')).toEqual(entries['model.layers.0.a'].data);
    expect(checkpoint.read('model.layers.0.b')).toEqual(entries['model.layers.0.b'].data);
    expect(checkpoint.read('model.layers.1.c')).toEqual(entries['model.layers.1.c'].data);
    expect(checkpoint.info('model.layers.1.c')).toEqual({ dtype: 'BF16', shape: [3, 4], byteLength: 24 });
    expect(checkpoint.read('lm_head.weight')).toEqual(entries['lm_head.weight'].data);
    expect(checkpoint.readBytes('lm_head.weight').byteLength).toBe(64);
    expect(() => checkpoint.read('lm_head.wieght')).toThrow(
      /tensor 'lm_head.wieght' does not exist.*'lm_head.weight'/,
    );
    checkpoint.close();
  });

  it('gives a tensor bigger than the limit a shard of its own', () => {
    const dir = freshDir();
    const { files } = writeShardedSafetensors(
      dir,
      { small: f32(2, 0), huge: f32(100, 0), tail: f32(2, 0) },
      { maxShardBytes: 16 },
    );
    expect(files).toHaveLength(4);
    const shardOf = readShardIndex(dir).weightMap;
    expect([shardOf.small, shardOf.huge, shardOf.tail]).toEqual([shardName(1), shardName(2), shardName(3)]);
  });

  it('writes a single model.safetensors when everything fits', () => {
    const dir = freshDir();
    const result = writeShardedSafetensors(dir, entries);
    expect(result.files).toEqual(['model.safetensors']);
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
    const checkpoint = openCheckpoint(dir);
    expect(checkpoint.index).toBeUndefined();
    expect(checkpoint.metadata).toEqual({ format: 'pt' });
    expect(checkpoint.read('lm_head.weight')).toEqual(entries['lm_head.weight'].data);
    checkpoint.close();
    const direct = openCheckpoint(join(dir, 'model.safetensors'));
    expect(direct.names()).toEqual(Object.keys(entries));
    direct.close();
  });

  it('removes the files of an older checkpoint when overwriting, and leaves no temp files', () => {
    const dir = freshDir();
    writeShardedSafetensors(dir, entries, { maxShardBytes: 80 });
    writeShardedSafetensors(dir, entries, { maxShardBytes: 100 });
    const twoShards = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    expect(readdirSync(dir).sort()).toEqual([...twoShards, 'model.safetensors.index.json']);
    using checkpoint = openCheckpoint(dir);
    expect(checkpoint.read('model.layers.1.c')).toEqual(entries['model.layers.1.c'].data);

    writeShardedSafetensors(dir, entries);
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
    writeShardedSafetensors(dir, entries, { maxShardBytes: 80 });
    expect(readdirSync(dir).sort()).toEqual([
      shardName(1),
      shardName(2),
      shardName(3),
      'model.safetensors.index.json',
    ]);
  });

  it('validates its options and entries before touching the directory', () => {
    const dir = freshDir();
    expectError(() => writeShardedSafetensors(dir, entries, { maxShardBytes: 0 }), ['maxShardBytes is 0']);
    expectError(
      () => writeShardedSafetensors(dir, { w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }),
      [dir, "tensor 'w'", 'has shape [3] (3 elements) but its data has 2'],
    );
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('index validation', () => {
  function sharded(): string {
    const dir = freshDir();
    writeShardedSafetensors(dir, entries, { maxShardBytes: 80 });
    return dir;
  }
  const indexPath = (dir: string) => join(dir, 'model.safetensors.index.json');
  const editIndex = (
    dir: string,
    edit: (index: { metadata: object; weight_map: Record<string, unknown> }) => void,
  ) => {
    const index = JSON.parse(readFileSync(indexPath(dir), 'utf8'));
    edit(index);
    writeFileSync(indexPath(dir), JSON.stringify(index));
  };

  it('reports a missing shard file, naming the index, tensor and shard', () => {
    const dir = sharded();
    rmSync(join(dir, shardName(2)));
    expectError(
      () => readShardIndex(dir),
      [indexPath(dir), "tensor 'model.layers.1.c'", `'${shardName(2)}', which does not exist`],
    );
    expectError(() => openCheckpoint(dir), [indexPath(dir), shardName(2)]);
  });

  it('reports a tensor mapped to a shard that lacks it', () => {
    const dir = sharded();
    editIndex(dir, (index) => {
      index.weight_map['lm_head.weight'] = shardName(1);
    });
    expectError(
      () => openCheckpoint(dir),
      [indexPath(dir), "tensor 'lm_head.weight'", `shard '${shardName(1)}', which has no tensor`],
    );
  });

  it('rejects shard paths that leave the directory, and malformed indexes', () => {
    const dir = sharded();
    editIndex(dir, (index) => {
      index.weight_map['lm_head.weight'] = '../elsewhere.safetensors';
    });
    expectError(() => readShardIndex(dir), ["tensor 'lm_head.weight'", 'expected a file name in']);
    editIndex(dir, (index) => {
      index.metadata = { total_size: 'big' };
    });
    expectError(() => readShardIndex(dir), ['metadata.total_size is "big"; expected a byte count']);
    writeFileSync(indexPath(dir), '{"metadata": {}}');
    expectError(() => readShardIndex(dir), [indexPath(dir), 'expected an object with weight_map']);
    writeFileSync(indexPath(dir), '{not json');
    expectError(() => openCheckpoint(dir), [indexPath(dir), 'is not valid JSON']);
  });

  it('reports a directory with no checkpoint in it', () => {
    const dir = freshDir();
    expectError(
      () => openCheckpoint(dir),
      [dir, 'holds neither model.safetensors nor model.safetensors.index.json'],
    );
  });
});
