// The WebAssembly SIMD folder against a plain loop: f32 and f64 sums over ranges of every length
// mod 16 bytes at any place in scratch and in the destination, bit for bit (an element-wise add
// has one rounding either way), and the other dtypes and ops passed through.
// Test: cd packages/parallel && npx vitest run src/folder
import { describe, expect, it } from 'vitest';
import type { Combine } from './combine.js';
import { simdFolder } from './folder.js';
import type { Elements } from './transport.js';

const FOLD = 64 * 1024;

describe('simdFolder', () => {
  it('runs in WebAssembly memory (SIMD is present in this Node)', () => {
    // The module's memory holds scratch and the copy of the destination's slice after it.
    expect(simdFolder(FOLD).scratch.buffer.byteLength).toBe(2 * FOLD);
  });

  it.each([
    ['f32', 'sum', Float32Array],
    ['f64', 'sum', Float64Array],
    ['f32', 'max', Float32Array],
    ['i32', 'sum', Int32Array],
  ] as const)('%s %s matches a plain loop bit for bit', (_, combine: Combine, Ctor) => {
    const folder = simdFolder(FOLD);
    const width = Ctor.BYTES_PER_ELEMENT;
    const make = (n: number, k: number): Elements =>
      new Ctor(n).map((_, i) => (Ctor === Int32Array ? (i * k) % 1000 : Math.sin(i * k) * 1e3));
    const target = make(20_000, 3);
    const want = target.slice();
    for (const [from, elements, at] of [
      [0, 1, 0],
      [width, 3, 5],
      [16, 4, 100],
      [8, 37, 999],
      [FOLD - 64 * width, 64, 12_000],
      [0, FOLD / width, 1],
    ] as const) {
      const to = from + elements * width;
      const incoming = make(elements, from + at + 1);
      folder.scratch.set(new Uint8Array(incoming.buffer), from);
      for (let i = 0; i < elements; i++)
        want[at + i] =
          combine === 'sum' ? want[at + i]! + incoming[i]! : Math.max(want[at + i]!, incoming[i]!);
      folder.fold(target, combine, at * width, from, to);
    }
    expect(Buffer.from(target.buffer).equals(Buffer.from(want.buffer))).toBe(true);
  });
});
