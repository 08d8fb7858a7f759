// Philox4x32-10 counter-based block cipher (Salmon et al., SC'11; Random123 philox.h), in 32-bit JS math.
// One block = 4 u32 words from a 128-bit counter and a 64-bit key; no hidden state, so any block can
// be computed on its own (what lets a GPU thread reproduce the CPU stream from (key, counter)).
// Test: cd packages/tensor && npx vitest run src/random/philox.test.ts (Random123 kat_vectors).

/** Random123 PHILOX_M4x32_0 and PHILOX_M4x32_1: the round multipliers. */
export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
/** Random123 PHILOX_W32_0 and PHILOX_W32_1 (golden ratio, sqrt(3)-1): the per-round key bumps. */
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;
export const PHILOX_ROUNDS = 10;

// The multipliers split into 16-bit halves: a u32 times a 16-bit half stays below 2^48, exact in a
// double, so the high word of the 64-bit product is exact without BigInt.
const M0_HI = PHILOX_M0 >>> 16;
const M0_LO = PHILOX_M0 & 0xffff;
const M1_HI = PHILOX_M1 >>> 16;
const M1_LO = PHILOX_M1 & 0xffff;
const TWO_POW_16 = 65536;

/** High 32 bits of the 64-bit product a * b of two u32 (CUDA __umulhi), exact. */
export function mulhi32(a: number, b: number): number {
  const partial = a * (b >>> 16) + Math.floor((a * (b & 0xffff)) / TWO_POW_16);
  return Math.floor(partial / TWO_POW_16) >>> 0;
}

/**
 * Writes blockCount consecutive Philox4x32-10 blocks into out[outOffset ..], 4 words per block.
 * Block i uses the 128-bit counter (c0, c1, c2, c3) + i, little-endian (c0 least significant),
 * wrapping mod 2^128 as Random123's ctr.incr() does. Allocates nothing; this is the hot path.
 */
export function philox4x32Fill(
  key: readonly [number, number],
  counter: readonly [number, number, number, number],
  blockCount: number,
  out: Uint32Array,
  outOffset = 0,
): void {
  if (outOffset + 4 * blockCount > out.length) {
    throw new RangeError(
      `philox4x32Fill: ${blockCount} blocks from offset ${outOffset} need ${outOffset + 4 * blockCount} words, out has ${out.length}`,
    );
  }
  const key0 = key[0] >>> 0;
  const key1 = key[1] >>> 0;
  let ctr0 = counter[0] >>> 0;
  let ctr1 = counter[1] >>> 0;
  let ctr2 = counter[2] >>> 0;
  let ctr3 = counter[3] >>> 0;
  let o = outOffset;
  for (let block = 0; block < blockCount; block++) {
    let x0 = ctr0;
    let x1 = ctr1;
    let x2 = ctr2;
    let x3 = ctr3;
    let k0 = key0;
    let k1 = key1;
    for (let round = 0; round < PHILOX_ROUNDS; round++) {
      if (round > 0) {
        k0 = (k0 + PHILOX_W0) >>> 0;
        k1 = (k1 + PHILOX_W1) >>> 0;
      }
      // Same as mulhi32 with the constant halves hoisted; low words come from Math.imul.
      const hi0 = Math.floor((x0 * M0_HI + Math.floor((x0 * M0_LO) / TWO_POW_16)) / TWO_POW_16) >>> 0;
      const lo0 = Math.imul(x0, PHILOX_M0) >>> 0;
      const hi1 = Math.floor((x2 * M1_HI + Math.floor((x2 * M1_LO) / TWO_POW_16)) / TWO_POW_16) >>> 0;
      const lo1 = Math.imul(x2, PHILOX_M1) >>> 0;
      const y0 = (hi1 ^ x1 ^ k0) >>> 0;
      const y2 = (hi0 ^ x3 ^ k1) >>> 0;
      x0 = y0;
      x1 = lo1;
      x2 = y2;
      x3 = lo0;
    }
    out[o] = x0;
    out[o + 1] = x1;
    out[o + 2] = x2;
    out[o + 3] = x3;
    o += 4;
    // 128-bit increment with carry; the carry past c0 happens once per 2^32 blocks.
    ctr0 = (ctr0 + 1) >>> 0;
    if (ctr0 === 0) {
      ctr1 = (ctr1 + 1) >>> 0;
      if (ctr1 === 0) {
        ctr2 = (ctr2 + 1) >>> 0;
        if (ctr2 === 0) ctr3 = (ctr3 + 1) >>> 0;
      }
    }
  }
}

const singleBlock = new Uint32Array(4);

/** One Philox4x32-10 block: philox4x32([c0, c1, c2, c3], [k0, k1]) -> [r0, r1, r2, r3], all u32. */
export function philox4x32(
  counter: readonly [number, number, number, number],
  key: readonly [number, number],
): [number, number, number, number] {
  philox4x32Fill(key, counter, 1, singleBlock, 0);
  return [singleBlock[0]!, singleBlock[1]!, singleBlock[2]!, singleBlock[3]!];
}
