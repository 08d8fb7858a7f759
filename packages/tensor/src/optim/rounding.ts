// Stochastic rounding of AdamW's bf16 moments, shared by the CPU kernel (cpu/optim.ts) and the cuda
// one (kernels-cuda csrc/optim.cu), which must draw the same bits: a counter-based hash of (salt,
// element index), the salt a hash of (step, parameter index), so a resumed run draws what an
// unbroken one would. Round-to-nearest would lose exp_avg_sq's small increments (with beta2 0.999
// each step adds a quarter of a bf16 step at most), so the moment would stop moving; rounding up
// with probability (the dropped bits) / 2^16 keeps every stored moment unbiased.
// Test: cd packages/tensor && npx vitest run src/optim

/** The 32-bit integer hash "lowbias32" (C. Wellons): each input bit flips about half the output. */
export function lowbias32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The salt of parameter `index` at optimizer step `step`: keys every draw of that update. */
export function momentSalt(step: number, index: number): number {
  return lowbias32((step ^ lowbias32((index + 0x632be5ab) >>> 0)) >>> 0);
}

/** Element i's draw: the low 16 bits round exp_avg, the high 16 bits exp_avg_sq. */
export function momentDraw(salt: number, i: number): number {
  const high = Math.floor(i / 2 ** 32);
  return lowbias32(((i >>> 0) ^ salt ^ Math.imul(high, 0x9e3779b9)) >>> 0);
}

/** x (rounded to f32 first) to bf16 bits, its magnitude rounded up with probability (dropped bits) / 2^16. */
export { f32ToBf16BitsStochastic as stochasticBf16Bits } from '../io/half-float.js';
