// Where a Folding landing (landing.ts) has the socket read a sum's or max's bytes, and how it
// combines them into the destination: simdFolder hands out the SIMD kernel's own memory, so the
// kernel copies straight into it and f32/f64 sums need no copy of the incoming bytes; jsFolder is
// a plain buffer and the loops of combine.ts (tests use it with tiny buffers).
// Test: cd packages/parallel && npx vitest run src/folder.test.ts src/reader.test.ts
import { type Combine, combineInto } from './combine.js';
import { sumKernel } from './simd-sum.js';
import type { Elements } from './transport.js';

export interface Folder {
  /** The bytes a Folding landing hands to the socket (a multiple of 8 long). */
  readonly scratch: Uint8Array;
  /** Combines scratch[from, to) into target, starting byteOffset bytes into it. */
  fold(target: Elements, combine: Combine, byteOffset: number, from: number, to: number): void;
}

export function jsFolder(bytes: number): Folder {
  const scratch = new Uint8Array(bytes);
  return {
    scratch,
    fold: (target, combine, byteOffset, from, to) =>
      combineInto(target, combine, byteOffset, scratch.subarray(from, to)),
  };
}

/** scratch is `bytes` long (a multiple of 64 KiB); jsFolder where WebAssembly SIMD is missing. */
export function simdFolder(bytes: number): Folder {
  const kernel = sumKernel(bytes);
  if (!kernel) return jsFolder(bytes);
  const scratch = kernel.heap.subarray(0, bytes);
  return {
    scratch,
    fold(target, combine, byteOffset, from, to) {
      if (combine === 'sum' && (target instanceof Float32Array || target instanceof Float64Array))
        kernel.addInto(target, byteOffset, from, to);
      else combineInto(target, combine, byteOffset, scratch.subarray(from, to));
    },
  };
}
