// Element types of a tensor and their host representations.
// f32 is the CPU reference; f64 serves finite-difference checks; bf16 is GPU storage (the CPU
// backend only converts it); i32 holds indices; bool holds masks (one byte per element).
// Test: cd packages/tensor && npx vitest run src/core
export type DType = 'f32' | 'f64' | 'bf16' | 'i32' | 'bool';
export const DTYPES: readonly DType[] = ['f32', 'f64', 'bf16', 'i32', 'bool'];

export type FloatDType = 'f32' | 'f64' | 'bf16';
export type HostArray = Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array;

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'f32' || dtype === 'f64' || dtype === 'bf16';
}

export function itemSize(dtype: DType): number {
  switch (dtype) {
    case 'f64':
      return 8;
    case 'f32':
    case 'i32':
      return 4;
    case 'bf16':
      return 2;
    case 'bool':
      return 1;
  }
}

/** Allocates the host array that holds `n` elements of `dtype` (bf16 as raw 16-bit patterns). */
export function hostArray(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'f64':
      return new Float64Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'bool':
      return new Uint8Array(n);
    case 'bf16':
      return new Uint16Array(n);
  }
}

export function assertDType(dtype: string, where: string): DType {
  if ((DTYPES as readonly string[]).includes(dtype)) return dtype as DType;
  throw new TypeError(`${where}: unknown dtype '${dtype}'; valid dtypes: ${DTYPES.join(', ')}`);
}
