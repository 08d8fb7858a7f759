// Longrope above the original context, as the original Phi-3.5-MoE code (and transformers 4.x)
// does it: once the sequence (largest position + 1) exceeds original_max_position_embeddings, the
// long factors AND long_mscale apply to every position; at or below it, the short ones. Checked
// against the closed form cos(p / (factor_j * theta^(2j/D))) * mscale, and against transformers
// 5.17's variant (short factors with the long mscale), which it must not match. The PyTorch dump
// of the same semantics is fixtures/mha-longrope-long (tools/reference/longrope_dump.py; parity.test.ts).
// Run: cd packages/model-grin && npx vitest run src/longrope
import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';
import { RotaryCache, rotaryTables } from './model.js';

const scaling = {
  type: 'longrope',
  short_factor: [1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.1, 3.8],
  long_factor: [1.2, 1.5, 2.0, 2.8, 3.9, 5.2, 6.6, 8.0],
  short_mscale: 1.1,
  long_mscale: 1.243,
  original_max_position_embeddings: 32,
};
const config = parseConfig({
  vocab_size: 64,
  hidden_size: 32,
  intermediate_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  num_local_experts: 4,
  max_position_embeddings: 128,
  rope_theta: 10000,
  rope_scaling: scaling,
});
const D = 16;

/** cos/sin [S, D] in the rotate-half layout: frequency j at columns j and j + D/2. */
function closedForm(S: number, factors: number[], mscale: number) {
  const cos: number[] = [];
  const sin: number[] = [];
  for (let p = 0; p < S; p++)
    for (let c = 0; c < D; c++) {
      const j = c % (D / 2);
      const angle = p / (factors[j]! * 10000 ** ((2 * j) / D));
      cos.push(Math.cos(angle) * mscale);
      sin.push(Math.sin(angle) * mscale);
    }
  return { cos, sin };
}

const maxDiff = (a: ArrayLike<number>, b: number[]) =>
  b.reduce((m, v, i) => Math.max(m, Math.abs(a[i]! - v)), 0);

describe('longrope', () => {
  it('past the original context: long factors and long mscale at every position (original Phi-3.5-MoE)', () => {
    const { cos, sin } = rotaryTables(config, 0, 48, 'f32');
    const original = closedForm(48, scaling.long_factor, scaling.long_mscale);
    expect(maxDiff(cos.toArray(), original.cos)).toBeLessThan(1e-5);
    expect(maxDiff(sin.toArray(), original.sin)).toBeLessThan(1e-5);
    // transformers 5.17: short factors with the long mscale; not what the checkpoints were trained with
    const v5 = closedForm(48, scaling.short_factor, scaling.long_mscale);
    expect(maxDiff(cos.toArray(), v5.cos)).toBeGreaterThan(0.1);
  });

  it('up to the original context: short factors and short mscale', () => {
    const { cos } = rotaryTables(config, 0, 32, 'f32');
    expect(
      maxDiff(cos.toArray(), closedForm(32, scaling.short_factor, scaling.short_mscale).cos),
    ).toBeLessThan(1e-5);
  });

  it('decoding past the original context with a cache: the table for the new position is long', () => {
    // one token at position 40 (offset 40): the sequence is 41 long, so long factors and mscale
    const { cos } = rotaryTables(config, 40, 1, 'f32');
    const row = closedForm(41, scaling.long_factor, scaling.long_mscale).cos.slice(40 * D);
    expect(maxDiff(cos.toArray(), row)).toBeLessThan(1e-5);
  });

  it('RotaryCache rows equal rotaryTables exactly, on both sides of the original context and as the tables grow', () => {
    const cache = new RotaryCache(config, 'f32');
    // short table grown 4 -> 8 -> 20 -> 32 (doubling capped at the original context), then long rows
    // and a longer long table
    const requests: Array<[number, number]> = [
      [0, 4],
      [3, 5],
      [0, 20],
      [0, 32],
      [31, 1],
      [0, 40],
      [10, 30],
      [47, 1],
      [0, 100],
      [60, 5],
    ];
    for (const [offset, length] of requests) {
      const got = cache.rows(offset, length);
      const want = rotaryTables(config, offset, length, 'f32');
      expect(Array.from(got.cos.toArray()), `cos at ${offset}+${length}`).toEqual(
        Array.from(want.cos.toArray()),
      );
      expect(Array.from(got.sin.toArray()), `sin at ${offset}+${length}`).toEqual(
        Array.from(want.sin.toArray()),
      );
      for (const t of [got.cos, got.sin, want.cos, want.sin]) t.dispose();
    }
    cache.dispose();
  });
});
