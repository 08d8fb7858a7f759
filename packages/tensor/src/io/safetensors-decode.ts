// Turning one tensor's little-endian bytes into a typed array by its safetensors dtype: F16/BF16
// widened to f32 (or kept as raw bits), I64 narrowed to int32 where every value fits (or kept as
// BigInt64). Import-free (no node:fs), so the file reader and the in-memory reader share it and it
// runs in a browser. Test: cd packages/tensor && npx vitest run src/io
import { bf16BitsToF32Array, f16BitsToF32Array } from './half-float.js';
import { type AnySafetensorsDType, SafetensorsError } from './safetensors-format.js';

/** 'raw': stored bits as is (F16/BF16 -> Uint16Array, I64 -> BigInt64Array); 'bigint': I64 only. */
export type ReadAs = 'decoded' | 'raw' | 'bigint';
export type DecodedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint16Array
  | Uint8Array;
export type TensorArray = DecodedArray | BigInt64Array;

function narrowI64(path: string, name: string, buffer: ArrayBuffer): Int32Array {
  const halves = new Int32Array(buffer);
  const narrowed = new Int32Array(halves.length / 2);
  for (let i = 0; i < narrowed.length; i++) {
    const low = halves[2 * i]!;
    // The value fits in int32 exactly when the high word is the sign extension of the low word.
    if (halves[2 * i + 1] !== low >> 31) {
      const value = new BigInt64Array(buffer)[i];
      throw new SafetensorsError(
        path,
        name,
        `(I64) element ${i} is ${value}, outside the int32 range; read it with as: 'bigint'`,
      );
    }
    narrowed[i] = low;
  }
  return narrowed;
}

/** Refuses a read mode the dtype has no meaning for (before any bytes are read). */
export function checkReadAs(path: string, name: string, dtype: AnySafetensorsDType, as: ReadAs): void {
  if (as === 'bigint' && dtype !== 'I64') {
    throw new SafetensorsError(path, name, `is ${dtype}; as: 'bigint' applies only to I64 tensors`);
  }
}

/** `bytes` must own a fresh, 8-byte aligned ArrayBuffer of exactly its length (it is viewed, not copied). */
export function decodeTensor(
  path: string,
  name: string,
  dtype: AnySafetensorsDType,
  bytes: Uint8Array,
  as: ReadAs = 'decoded',
): TensorArray {
  checkReadAs(path, name, dtype, as);
  const buffer = bytes.buffer as ArrayBuffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer);
    case 'F64':
      return new Float64Array(buffer);
    case 'I32':
      return new Int32Array(buffer);
    case 'I16':
      return new Int16Array(buffer);
    case 'I8':
      return new Int8Array(buffer);
    case 'U16':
      return new Uint16Array(buffer);
    case 'U8':
    case 'BOOL':
      return bytes;
    case 'F16':
      return as === 'raw' ? new Uint16Array(buffer) : f16BitsToF32Array(new Uint16Array(buffer));
    case 'BF16':
      return as === 'raw' ? new Uint16Array(buffer) : bf16BitsToF32Array(new Uint16Array(buffer));
    case 'I64':
      return as === 'decoded' ? narrowI64(path, name, buffer) : new BigInt64Array(buffer);
  }
}
