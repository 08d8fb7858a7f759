// Checks float32 <-> bf16/f16 conversions against known bit patterns, against a brute-force
// nearest-value reference (ties to even) on random and edge inputs, and exhaustively on all 65536
// 16-bit patterns. Run: cd packages/tensor && npx vitest run src/io/half-float.test.ts
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  bf16BitsToF32Array,
  f16BitsToF32,
  f16BitsToF32Array,
  f32ArrayToBf16Bits,
  f32ArrayToF16Bits,
  f32ToBf16Bits,
  f32ToF16Bits,
} from './half-float.js';

const f32FromBits = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0]!;
const isNaN16 = (half: number) => (half & 0x7c00) === 0x7c00 && (half & 0x3ff) !== 0;

// A tiny deterministic generator so failures reproduce.
function* randomBits(count: number, seed = 12345): Generator<number> {
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    yield state;
  }
}

/** Nearest representable value among sorted non-negative finite candidates, ties to the even pattern. */
function nearestEven(x: number, values: Float64Array, bits: Uint16Array, overflowBits: number): number {
  const magnitude = Math.abs(x);
  let low = 0;
  let high = values.length - 1;
  if (magnitude >= values[high]!) {
    // Past the largest finite value: IEEE rounds to inf once |x| reaches max + half an ulp.
    const halfUlp = (values[high]! - values[high - 1]!) / 2;
    if (magnitude > values[high]!) return magnitude >= values[high]! + halfUlp ? overflowBits : bits[high]!;
    return bits[high]!;
  }
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    if (values[middle]! <= magnitude) low = middle;
    else high = middle;
  }
  const below = magnitude - values[low]!;
  const above = values[high]! - magnitude;
  if (below < above) return bits[low]!;
  if (above < below) return bits[high]!;
  return (bits[low]! & 1) === 0 ? bits[low]! : bits[high]!;
}

function positiveFiniteTable(decode: (bits: number) => number, maxFiniteBits: number) {
  const bits = new Uint16Array(maxFiniteBits + 1).map((_, i) => i);
  return { values: Float64Array.from(bits, (b) => decode(b)), bits };
}

describe('bf16', () => {
  it('encodes known values', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(-2)).toBe(0xc000);
    expect(f32ToBf16Bits(0)).toBe(0x0000);
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(f32ToBf16Bits(Number.POSITIVE_INFINITY)).toBe(0x7f80);
    expect(f32ToBf16Bits(Number.NEGATIVE_INFINITY)).toBe(0xff80);
    expect(f32ToBf16Bits(Number.NaN)).toBe(0x7fc0);
    expect(f32ToBf16Bits(3.140625)).toBe(0x4049);
  });

  it('rounds ties to even, carries into the exponent, overflows to inf', () => {
    expect(f32ToBf16Bits(f32FromBits(0x3f808000))).toBe(0x3f80); // tie, 0x3f80 is even
    expect(f32ToBf16Bits(f32FromBits(0x3f818000))).toBe(0x3f82); // tie, 0x3f82 is even
    expect(f32ToBf16Bits(f32FromBits(0x3f808001))).toBe(0x3f81); // just above the tie
    expect(f32ToBf16Bits(f32FromBits(0x3fffffff))).toBe(0x4000); // carry into the exponent
    expect(f32ToBf16Bits(f32FromBits(0x7f7fffff))).toBe(0x7f80); // float32 max rounds to inf
  });

  it('handles subnormals and keeps every NaN a NaN', () => {
    expect(f32ToBf16Bits(f32FromBits(0x00000001))).toBe(0x0000);
    expect(f32ToBf16Bits(f32FromBits(0x00008000))).toBe(0x0000); // tie to even zero
    expect(f32ToBf16Bits(f32FromBits(0x00018000))).toBe(0x0002);
    expect(bf16BitsToF32(0x0001)).toBe(2 ** -133);
    expect(f32ArrayToBf16Bits(new Float32Array(new Uint32Array([0x7f800001, 0xff800001]).buffer))).toEqual(
      new Uint16Array([0x7fc0, 0xffc0]),
    );
  });

  it('decodes and re-encodes all 65536 patterns exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const decoded = bf16BitsToF32Array(all);
    const scalarMismatch = [...all].find((half) => !Object.is(decoded[half], bf16BitsToF32(half)));
    expect(scalarMismatch).toBeUndefined();
    const encoded = f32ArrayToBf16Bits(decoded);
    const mismatches = [...all].filter((half) => encoded[half] !== half);
    // Only NaNs may change (they get quieted); each must still be a NaN.
    expect(
      mismatches.every(
        (half) => Number.isNaN(bf16BitsToF32(half)) && Number.isNaN(bf16BitsToF32(encoded[half]!)),
      ),
    ).toBe(true);
  });

  it('matches the nearest-even reference on random float32 inputs', () => {
    const { values, bits } = positiveFiniteTable(bf16BitsToF32, 0x7f7f);
    for (const raw of randomBits(100_000)) {
      const x = f32FromBits(raw);
      if (Number.isNaN(x)) continue;
      const expected = nearestEven(x, values, bits, 0x7f80) | (raw >>> 31 ? 0x8000 : 0);
      if (f32ToBf16Bits(x) !== expected)
        expect(f32ToBf16Bits(x), `input bits ${raw.toString(16)}`).toBe(expected);
    }
  });
});

describe('f16', () => {
  it('encodes known values', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(0.1)).toBe(0x2e66);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(Number.POSITIVE_INFINITY)).toBe(0x7c00);
    expect(f32ToF16Bits(Number.NEGATIVE_INFINITY)).toBe(0xfc00);
    expect(isNaN16(f32ToF16Bits(Number.NaN))).toBe(true);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x3555)).toBe(0.333251953125);
  });

  it('rounds ties to even and overflows to inf at 65520', () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie, even stays
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, rounds up to even
    expect(f32ToF16Bits(2049)).toBe(0x6800);
    expect(f32ToF16Bits(2051)).toBe(0x6802);
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
  });

  it('handles subnormals and underflow', () => {
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie with zero goes to even zero
    expect(f32ToF16Bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2
    expect(f32ToF16Bits(1023 * 2 ** -24)).toBe(0x03ff); // largest subnormal
    expect(f32ToF16Bits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f32ToF16Bits(-1e-8)).toBe(0x8000);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x83ff)).toBe(-1023 * 2 ** -24);
  });

  it('keeps NaN a NaN even when its payload sits only in dropped bits', () => {
    const nans = new Float32Array(new Uint32Array([0x7f800001, 0xffc00000, 0x7fffffff]).buffer);
    for (const half of f32ArrayToF16Bits(nans)) expect(isNaN16(half)).toBe(true);
    expect(Number.isNaN(f16BitsToF32(0x7c01))).toBe(true);
    expect(f16BitsToF32(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
  });

  it('decodes and re-encodes all 65536 patterns exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const decoded = f16BitsToF32Array(all);
    const scalarMismatch = [...all].find((half) => !Object.is(decoded[half], f16BitsToF32(half)));
    expect(scalarMismatch).toBeUndefined();
    const encoded = f32ArrayToF16Bits(decoded);
    const mismatches = [...all].filter((half) => encoded[half] !== half);
    expect(mismatches.every((half) => isNaN16(half) && isNaN16(encoded[half]!))).toBe(true);
  });

  it('matches the nearest-even reference on random and near-boundary float32 inputs', () => {
    const { values, bits } = positiveFiniteTable(f16BitsToF32, 0x7bff);
    // Random bits mostly land outside f16 range; add inputs drawn from the f16 exponent range too.
    const inRange = [...randomBits(100_000, 777)].map(
      (r) => ((r & 0x807fffff) | ((((r >>> 23) % 36) + 98) << 23)) >>> 0,
    );
    for (const raw of [...randomBits(50_000), ...inRange]) {
      const x = f32FromBits(raw);
      if (Number.isNaN(x)) continue;
      const expected = nearestEven(x, values, bits, 0x7c00) | (raw >>> 31 ? 0x8000 : 0);
      if (f32ToF16Bits(x) !== expected)
        expect(f32ToF16Bits(x), `input bits ${raw.toString(16)}`).toBe(expected);
    }
  });
});
