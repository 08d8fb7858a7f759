// How a received chunk joins its destination: copied, summed or max-ed in place, element by element.
// f32 and f64 sums go through WebAssembly SIMD (simd-sum.ts) in blocks; the rest, and Nodes without
// SIMD, take one JS loop per dtype and op, because a loop over the Elements union is polymorphic
// and V8 then runs it several times slower.
// Test: cd packages/parallel && npx vitest run src/combine.test.ts
import { ParallelError } from './errors.js';
import { type SumKernel, sumKernel } from './simd-sum.js';
import type { Elements } from './transport.js';

export type Combine = 'copy' | 'sum' | 'max';

function sumF32(target: Float32Array, start: number, incoming: Float32Array): void {
  for (let i = 0; i < incoming.length; i++) target[start + i]! += incoming[i]!;
}
function sumF64(target: Float64Array, start: number, incoming: Float64Array): void {
  for (let i = 0; i < incoming.length; i++) target[start + i]! += incoming[i]!;
}
function sumI32(target: Int32Array, start: number, incoming: Int32Array): void {
  for (let i = 0; i < incoming.length; i++) target[start + i]! += incoming[i]!;
}
// max keeps a NaN from either side, as torch.maximum does.
function maxF32(target: Float32Array, start: number, incoming: Float32Array): void {
  for (let i = 0; i < incoming.length; i++) {
    const a = target[start + i]!;
    const b = incoming[i]!;
    target[start + i] = a >= b || Number.isNaN(a) ? a : b;
  }
}
function maxF64(target: Float64Array, start: number, incoming: Float64Array): void {
  for (let i = 0; i < incoming.length; i++) {
    const a = target[start + i]!;
    const b = incoming[i]!;
    target[start + i] = a >= b || Number.isNaN(a) ? a : b;
  }
}
function maxI32(target: Int32Array, start: number, incoming: Int32Array): void {
  for (let i = 0; i < incoming.length; i++) {
    const a = target[start + i]!;
    const b = incoming[i]!;
    target[start + i] = a >= b ? a : b;
  }
}

/** A typed view of chunk like target's; chunk must start at an element boundary of its buffer. */
function view<T extends Elements>(target: T, chunk: Uint8Array): T {
  const Ctor = target.constructor as new (b: ArrayBufferLike, o: number, n: number) => T;
  return new Ctor(chunk.buffer, chunk.byteOffset, chunk.byteLength / target.BYTES_PER_ELEMENT);
}

let shared: SumKernel | null | undefined;

/** target += chunk in SIMD, a kernel's half at a time (the copy in also fixes an unaligned chunk). */
function simdSum(target: Float32Array | Float64Array, byteOffset: number, chunk: Uint8Array): boolean {
  if (shared === undefined) shared = sumKernel(64 * 1024);
  if (!shared) return false;
  for (let done = 0; done < chunk.byteLength; done += shared.half) {
    const block = chunk.subarray(done, done + shared.half);
    shared.heap.set(block, 0);
    shared.addInto(target, byteOffset + done, 0, block.byteLength);
  }
  return true;
}

/** Combines chunk (bytes of target's dtype) into target, starting byteOffset bytes in. */
export function combineInto(target: Elements, combine: Combine, byteOffset: number, chunk: Uint8Array): void {
  if (combine === 'copy') {
    new Uint8Array(target.buffer, target.byteOffset, target.byteLength).set(chunk, byteOffset);
    return;
  }
  const width = target.BYTES_PER_ELEMENT;
  if (byteOffset % width !== 0 || chunk.byteLength % width !== 0)
    throw new ParallelError(
      `combine: a chunk of ${chunk.byteLength} bytes at byte ${byteOffset} does not hold whole ${width}-byte elements`,
    );
  const floats = target instanceof Float32Array || target instanceof Float64Array;
  if (combine === 'sum' && floats && simdSum(target, byteOffset, chunk)) return;
  // A typed view needs an aligned start: copy the rare unaligned chunk once.
  if (chunk.byteOffset % width !== 0) chunk = chunk.slice();
  const start = byteOffset / width;
  if (target instanceof Float32Array) {
    if (combine === 'sum') sumF32(target, start, view(target, chunk));
    else maxF32(target, start, view(target, chunk));
  } else if (target instanceof Float64Array) {
    if (combine === 'sum') sumF64(target, start, view(target, chunk));
    else maxF64(target, start, view(target, chunk));
  } else if (combine === 'sum') sumI32(target, start, view(target, chunk));
  else maxI32(target, start, view(target, chunk));
}
