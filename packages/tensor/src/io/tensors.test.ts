// Tensor-level safetensors round trips: every dtype, bf16 decode, sharded checkpoints.
// Run: cd packages/tensor && npx vitest run src/io/tensors
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '../index.js';

describe('saveTensors / loadTensors', () => {
  it('round-trips f32, f64, i32, bool and bf16 bit-exactly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'grin-st-'));
    const src = {
      a: T.tensor([
        [1.5, -2],
        [3.25, 1e-30],
      ]),
      b: T.tensor([Math.PI], { dtype: 'f64' }),
      c: T.tensor([1, -7, 2 ** 30], { dtype: 'i32' }),
      d: T.tensor([1, 0, 1], { dtype: 'bool' }),
      e: T.cast(T.tensor([1.1, -3]), 'bf16'),
      view: T.arange(6, { dtype: 'f32' }).reshape([2, 3]).transpose(),
    };
    T.saveTensors(join(dir, 'x.safetensors'), src, { note: 'hi' });
    const back = T.loadTensors(join(dir, 'x.safetensors'), { floatDType: 'bf16' });
    expect(back.a!.toList()).toEqual(src.a.toList());
    expect(back.b!.dtype).toBe('f64');
    expect(back.b!.item()).toBe(Math.PI);
    expect(Array.from(back.c!.toArray())).toEqual([1, -7, 2 ** 30]);
    expect(back.d!.dtype).toBe('bool');
    expect(back.e!.dtype).toBe('bf16');
    expect(Array.from(back.e!.toArray())).toEqual(Array.from(src.e.toArray()));
    expect(back.view!.toList()).toEqual([
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
    const decoded = T.loadTensors(join(dir, 'x.safetensors'));
    expect(decoded.e!.dtype).toBe('f32');
    expect(Array.from(decoded.e!.toArray())).toEqual([1.1015625, -3]);
  });

  it('writes and reads a sharded checkpoint directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'grin-ck-'));
    const tensors = Object.fromEntries(
      Array.from({ length: 5 }, (_, i) => [`layer.${i}.weight`, T.full([64], i)]),
    );
    const files = T.saveCheckpoint(dir, tensors, { maxShardBytes: 600 });
    expect(files.length).toBeGreaterThan(1);
    const back = T.loadTensors(dir);
    expect(Object.keys(back).sort()).toEqual(Object.keys(tensors).sort());
    expect(back['layer.3.weight']!.toArray()[10]).toBe(3);
  });
});
