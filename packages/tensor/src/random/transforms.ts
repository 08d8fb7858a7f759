// Pure maps from Philox output words to draws; the arithmetic a GPU kernel must copy to match the CPU.
// Integer and uniform maps are exact IEEE arithmetic (bit-identical anywhere); the log/sqrt/cos/sin
// ones follow V8's Math (fdlibm), so a CUDA libm may differ by an ulp before rounding to f32.
// Test: cd packages/tensor && npx vitest run src/random (generator.test.ts covers these through draws).

import { mulhi32 } from './philox.js';

const TWO_POW_M24 = 2 ** -24;
const TWO_POW_M52 = 2 ** -52;
const TWO_POW_M53 = 2 ** -53;
const TWO_POW_32 = 2 ** 32;

/** Top 24 bits of w times 2^-24: a float32-exact value in [0, 1 - 2^-24]. */
export function unitFloat32(w: number): number {
  return (w >>> 8) * TWO_POW_M24;
}

/** 27 bits of first and 26 of second (MT19937 genrand_res53): a double in [0, 1 - 2^-53]. */
export function unitFloat64(first: number, second: number): number {
  return ((first >>> 5) * 67108864 + (second >>> 6)) * TWO_POW_M53;
}

/** unitFloat32 shifted by half its step: in (0, 1), symmetric about 1/2, so log never sees 0. */
export function openUnitFloat32(w: number): number {
  return ((w >>> 8) + 0.5) * TWO_POW_M24;
}

/**
 * 52 bits (27 of first, 25 of second) plus half a step, times 2^-52: in (0, 1). One bit fewer than
 * unitFloat64 because k + 0.5 must stay exact in a double; with 53 bits it would round up to 1.
 */
export function openUnitFloat64(first: number, second: number): number {
  return ((first >>> 5) * 33554432 + (second >>> 7) + 0.5) * TWO_POW_M52;
}

/**
 * floor(x * range / 2^64) with x = first * 2^32 + second (CUDA __umul64hi(x, range)), for
 * 1 <= range <= 2^32. Every result in [0, range) has probability within 2^-64 of 1/range, so the
 * bias is far below anything a test of fewer than 2^60 draws could see, and each draw costs exactly
 * two words (rejection sampling would make the word count data-dependent and break parallel replay).
 */
export function boundedUint(first: number, second: number, range: number): number {
  if (range === TWO_POW_32) return first >>> 0;
  // x * range = first*range * 2^32 + second*range; split each product into u32 halves, keep the carry.
  const firstProductHi = mulhi32(first, range);
  const firstProductLo = Math.imul(first, range) >>> 0;
  const secondProductHi = mulhi32(second, range);
  return firstProductHi + (firstProductLo + secondProductHi >= TWO_POW_32 ? 1 : 0);
}

const float32Scratch = new Float32Array(1);
const float32Bits = new Uint32Array(float32Scratch.buffer);
const float64Scratch = new Float64Array(1);
const float64Bits = new BigUint64Array(float64Scratch.buffer);

/** The largest float32 strictly below the double x (nextafterf toward -inf), for finite x. */
export function float32Below(x: number): number {
  const rounded = Math.fround(x);
  if (rounded < x) return rounded;
  if (rounded === 0) return -(2 ** -149);
  float32Scratch[0] = rounded;
  float32Bits[0] = rounded > 0 ? float32Bits[0]! - 1 : float32Bits[0]! + 1;
  return float32Scratch[0]!;
}

/** The largest double strictly below x (nextafter toward -inf), for finite x. */
export function float64Below(x: number): number {
  if (x === 0) return -Number.MIN_VALUE;
  float64Scratch[0] = x;
  float64Bits[0] = x > 0 ? float64Bits[0]! - 1n : float64Bits[0]! + 1n;
  return float64Scratch[0]!;
}
