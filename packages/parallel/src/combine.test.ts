// combineInto against plain loops for every dtype and op, at an offset, from a chunk that starts
// off its buffer's element boundary (as bytes read off a socket may), f32/f64 sums over several
// SIMD blocks, NaN kept by max, and the error for a chunk of partial elements. Test: cd packages/parallel && npx vitest run src/combine
import { describe, expect, it } from 'vitest';
import { type Combine, combineInto } from './combine.js';
import { bytesOf, type Elements } from './transport.js';

const dtypes = [
  ['f32', Float32Array],
  ['f64', Float64Array],
  ['i32', Int32Array],
] as const;

function reference(target: number[], combine: Combine, start: number, incoming: ArrayLike<number>) {
  const out = [...target];
  for (let i = 0; i < incoming.length; i++) {
    const a = out[start + i]!;
    const b = incoming[i]!;
    out[start + i] = combine === 'copy' ? b : combine === 'sum' ? a + b : Math.max(a, b);
  }
  return out;
}

describe('combineInto', () => {
  it.each(
    dtypes.flatMap(([name, Ctor]) => (['copy', 'sum', 'max'] as const).map((c) => [name, c, Ctor] as const)),
  )('%s %s into the right elements, from an unaligned chunk', (_, combine, Ctor) => {
    const target: Elements = new Ctor(40).map((_, i) => (i * 7) % 13);
    const incoming: Elements = new Ctor(17).map((_, i) => (i * 5) % 11);
    // The chunk's bytes sit one byte into their buffer, like a read that began mid-element.
    const unaligned = new Uint8Array(incoming.byteLength + 1).subarray(1);
    unaligned.set(bytesOf(incoming));
    const want = reference([...target], combine, 9, incoming);
    combineInto(target, combine, 9 * target.BYTES_PER_ELEMENT, unaligned);
    expect([...target]).toEqual(want);
  });

  it.each([
    ['f32', Float32Array],
    ['f64', Float64Array],
  ] as const)(
    '%s sum of a chunk over several SIMD blocks, unaligned, matches the loop bit for bit',
    (_, Ctor) => {
      const target: Elements = new Ctor(60_000).map((_, i) => Math.sin(i) * 1e3);
      const incoming: Elements = new Ctor(50_001).map((_, i) => Math.cos(i * 3) * 1e-2);
      const unaligned = new Uint8Array(incoming.byteLength + 3).subarray(3);
      unaligned.set(bytesOf(incoming));
      const want = Ctor.from(reference([...target], 'sum', 777, incoming));
      combineInto(target, 'sum', 777 * target.BYTES_PER_ELEMENT, unaligned);
      expect(Buffer.from(target.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    },
  );

  it('max keeps a NaN from either side', () => {
    const target = Float32Array.of(Number.NaN, 1, 5);
    combineInto(target, 'max', 0, bytesOf(Float32Array.of(2, Number.NaN, 3)));
    expect([...target]).toEqual([Number.NaN, Number.NaN, 5]);
  });

  it('refuses a chunk of partial elements for a reduction', () => {
    expect(() => combineInto(new Float32Array(4), 'sum', 2, new Uint8Array(4))).toThrow(
      /4 bytes at byte 2 does not hold whole 4-byte elements/,
    );
    expect(() => combineInto(new Float64Array(4), 'max', 0, new Uint8Array(12))).toThrow(
      /12 bytes at byte 0 does not hold whole 8-byte elements/,
    );
  });
});
