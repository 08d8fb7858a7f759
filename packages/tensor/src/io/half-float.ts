// Exact conversions between float32 and the 16-bit float formats bf16 and IEEE f16, scalar and array.
// Rounding is round-to-nearest-even, like PyTorch's .to(bfloat16/float16) and numpy's float16;
// the f16 path follows numpy's npy_floatbits_to_halfbits. Used by safetensors IO and the CUDA backend.
// Test: cd packages/tensor && npx vitest run src/io/half-float.test.ts

// Scalar conversions go through this scratch pair to reinterpret float32 bits without allocating.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 bit pattern -> bf16 bits. NaN stays a (quiet) NaN with its sign; overflow rounds to inf. */
export function f32BitsToBf16Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry into the exponent is correct.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * float32 bit pattern -> bf16 bits rounded stochastically: the magnitude rounds up with probability
 * (the 16 dropped bits) / 2^16, given 16 uniform bits `draw16` (AdamW's bf16 moments,
 * optim/rounding.ts). NaN as in f32BitsToBf16Bits; exact values never move.
 */
export function f32BitsToBf16BitsStochastic(bits: number, draw16: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  return ((bits + draw16) >>> 16) & 0xffff;
}

/** float32 bit pattern -> IEEE f16 bits, round-to-nearest-even including subnormals. */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const magnitude = bits & 0x7fffffff;
  const exponent = magnitude & 0x7f800000;
  if (exponent >= 0x47800000) {
    // |x| >= 65536, inf or NaN. A NaN whose payload lives only in the dropped low bits must stay NaN.
    if (magnitude <= 0x7f800000) return sign | 0x7c00;
    const nan = 0x7c00 | ((magnitude & 0x007fffff) >>> 13);
    return sign | (nan === 0x7c00 ? 0x7e00 : nan);
  }
  if (exponent <= 0x38000000) {
    // Result is an f16 subnormal or zero. Below 2^-25 everything rounds to zero.
    if (exponent < 0x33000000) return sign;
    let significand = (0x00800000 | (magnitude & 0x007fffff)) >>> (113 - (exponent >>> 23));
    // The shift may have dropped up to 11 low bits; a tie only counts if those were all zero too.
    if ((significand & 0x3fff) !== 0x1000 || (magnitude & 0x7ff) !== 0) significand += 0x1000;
    // A carry out of the significand lands in the exponent field: the right answer (smallest normal).
    return sign | (significand >>> 13);
  }
  let significand = magnitude & 0x007fffff;
  if ((significand & 0x3fff) !== 0x1000) significand += 0x1000;
  // Carries ripple from significand into exponent and, at 65520 and up, into inf (0x7c00): all correct.
  return sign | (((exponent - 0x38000000) >>> 13) + (significand >>> 13));
}

/** IEEE f16 bits -> float32 bit pattern (exact; NaN payload kept). */
export function f16BitsToF32Bits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal: shift the mantissa up until its leading one becomes the implicit bit.
  let shift = 0;
  let normalized = mantissa;
  while ((normalized & 0x400) === 0) {
    normalized <<= 1;
    shift++;
  }
  return (sign | ((113 - shift) << 23) | ((normalized & 0x3ff) << 13)) >>> 0;
}

/** Rounds x to float32 first (Math.fround), then to bf16 bits. */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToBf16Bits(scratchU32[0]);
}

/** Rounds x to float32 first, then stochastically to bf16 bits (f32BitsToBf16BitsStochastic). */
export function f32ToBf16BitsStochastic(x: number, draw16: number): number {
  scratchF32[0] = x;
  return f32BitsToBf16BitsStochastic(scratchU32[0], draw16);
}

export function bf16BitsToF32(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}

/** Rounds x to float32 first (Math.fround), then to f16 bits. */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToF16Bits(scratchU32[0]);
}

export function f16BitsToF32(bits: number): number {
  scratchU32[0] = f16BitsToF32Bits(bits & 0xffff);
  return scratchF32[0];
}

function checkLengths(source: ArrayLike<number>, target: ArrayLike<number>, what: string): void {
  if (target.length !== source.length) {
    throw new RangeError(
      `half-float.ts: ${what}: target has ${target.length} elements, expected ${source.length}`,
    );
  }
}

export function f32ArrayToBf16Bits(
  source: Float32Array,
  target = new Uint16Array(source.length),
): Uint16Array {
  checkLengths(source, target, 'f32ArrayToBf16Bits');
  const sourceBits = new Uint32Array(source.buffer, source.byteOffset, source.length);
  for (let i = 0; i < sourceBits.length; i++) target[i] = f32BitsToBf16Bits(sourceBits[i]);
  return target;
}

export function bf16BitsToF32Array(
  source: Uint16Array,
  target = new Float32Array(source.length),
): Float32Array {
  checkLengths(source, target, 'bf16BitsToF32Array');
  const targetBits = new Uint32Array(target.buffer, target.byteOffset, target.length);
  for (let i = 0; i < source.length; i++) targetBits[i] = source[i] << 16;
  return target;
}

export function f32ArrayToF16Bits(
  source: Float32Array,
  target = new Uint16Array(source.length),
): Uint16Array {
  checkLengths(source, target, 'f32ArrayToF16Bits');
  const sourceBits = new Uint32Array(source.buffer, source.byteOffset, source.length);
  for (let i = 0; i < sourceBits.length; i++) target[i] = f32BitsToF16Bits(sourceBits[i]);
  return target;
}

// 65536 entries (256 KB) built on first use: a table lookup beats the branchy decode on big tensors.
let f16Table: Uint32Array | undefined;

export function f16BitsToF32Array(
  source: Uint16Array,
  target = new Float32Array(source.length),
): Float32Array {
  checkLengths(source, target, 'f16BitsToF32Array');
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let half = 0; half < 65536; half++) f16Table[half] = f16BitsToF32Bits(half);
  }
  const table = f16Table;
  const targetBits = new Uint32Array(target.buffer, target.byteOffset, target.length);
  for (let i = 0; i < source.length; i++) targetBits[i] = table[source[i]];
  return target;
}
