// FrameReader and the landings without a socket: one byte stream of frames (copies, sums and maxes
// of f32/f64; frames that come before their receive, posted midway or never; empty and control
// frames) is read in pieces of random sizes into whatever buffers the reader hands out, as the
// kernel would, and every destination must end exactly as the frames say. Test: cd packages/parallel && npx vitest run src/reader
import { describe, expect, it } from 'vitest';
import { type Combine, combineInto } from './combine.js';
import { jsFolder } from './folder.js';
import { Folding, InPlace, type Landing, NoPayload, Staged } from './landing.js';
import { FrameReader } from './reader.js';
import { bytesOf, type Elements } from './transport.js';
import { encodeHeader, type FrameHeader, FrameKind } from './wire.js';

function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

interface Case {
  key: string;
  combine: Combine;
  target: Elements;
  payload: Elements;
  offsetElements: number;
  /** Arrives before its receive: posted at the n-th time the landing asks (never: Infinity). */
  postedAt?: number;
}

function cases(): Case[] {
  const f32 = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => ((i * k) % 17) - 8);
  const f64 = (n: number, k: number) => Float64Array.from({ length: n }, (_, i) => ((i * k) % 23) / 3);
  return [
    { key: 'copy', combine: 'copy', target: f32(5000, 3), payload: f32(3001, 7), offsetElements: 999 },
    { key: 'sum', combine: 'sum', target: f32(7000, 5), payload: f32(6999, 11), offsetElements: 1 },
    { key: 'max', combine: 'max', target: f64(3000, 2), payload: f64(2500, 13), offsetElements: 500 },
    { key: 'tiny', combine: 'sum', target: f32(3, 1), payload: f32(1, 9), offsetElements: 2 },
    {
      key: 'unclaimed',
      combine: 'copy',
      target: f64(100, 1),
      payload: f64(77, 5),
      offsetElements: 0,
      postedAt: Infinity,
    },
    {
      key: 'late sum',
      combine: 'sum',
      target: f64(4000, 4),
      payload: f64(3999, 3),
      offsetElements: 1,
      postedAt: 3,
    },
    {
      key: 'late copy',
      combine: 'copy',
      target: f32(4000, 6),
      payload: f32(3333, 5),
      offsetElements: 7,
      postedAt: 2,
    },
    { key: 'empty', combine: 'copy', target: f32(0, 1), payload: f32(0, 1), offsetElements: 0 },
  ];
}

function stream(all: Case[]): Uint8Array {
  const parts: Uint8Array[] = [encodeHeader(control(FrameKind.accept))];
  for (const c of all) {
    const width = c.target.BYTES_PER_ELEMENT;
    parts.push(
      encodeHeader({
        kind: FrameKind.data,
        key: c.key,
        descriptor: 'x',
        byteLength: c.target.byteLength,
        offset: c.offsetElements * width,
        length: c.payload.byteLength,
      }),
      bytesOf(c.payload),
    );
  }
  parts.push(encodeHeader(control(FrameKind.goodbye)));
  return Buffer.concat(parts);
}

function control(kind: FrameKind): FrameHeader {
  return { kind, key: '', descriptor: '', byteLength: 0, offset: 0, length: 0 };
}

describe('FrameReader', () => {
  it.each([
    [1, 7, 24],
    [2, 64, 8],
    [3, 5000, 256],
    [4, 100_000, 1 << 16],
  ])(
    'seed %i, reads up to %i bytes, fold buffer %i bytes: every frame lands exactly',
    (seed, maxRead, foldBytes) => {
      const all = cases();
      const want = all.map((c) => {
        const copy = c.target.slice();
        combineInto(copy, c.combine, c.offsetElements * copy.BYTES_PER_ELEMENT, bytesOf(c.payload));
        return copy;
      });
      const seen: string[] = [];
      const folder = jsFolder(foldBytes);
      const reader = new FrameReader((header): Landing => {
        const c = all.find((x) => x.key === header.key);
        if (header.kind !== FrameKind.data || !c)
          return new NoPayload(() => seen.push(`kind ${header.kind}`));
        const done = () => seen.push(c.key);
        const land = (from: number): Landing => {
          const [offset, length] = [header.offset + from, header.length - from];
          if (length === 0) return new NoPayload(done);
          if (c.combine === 'copy') return new InPlace(bytesOf(c.target), offset, length, done);
          return new Folding(c.target, c.combine, offset, folder, done);
        };
        if (c.postedAt === undefined) return land(0);
        let asked = 0;
        return new Staged(header.length, header.offset, {
          claim: () =>
            ++asked >= c.postedAt! ? { descriptor: 'x', target: c.target, combine: c.combine } : null,
          land: (_, from) => land(from),
          landed: () => {},
          queue: (data) => {
            combineInto(c.target, c.combine, header.offset, data);
            done();
          },
        });
      }, 1 << 16);
      const bytes = stream(all);
      const draw = random(seed);
      for (let at = 0; at < bytes.length; ) {
        const into = reader.next();
        expect(into.length).toBeGreaterThan(0);
        const n = Math.min(into.length, bytes.length - at, 1 + Math.floor(draw() * maxRead));
        into.set(bytes.subarray(at, at + n));
        reader.read(n);
        at += n;
      }
      expect(seen).toEqual([
        `kind ${FrameKind.accept}`,
        ...all.map((c) => c.key),
        `kind ${FrameKind.goodbye}`,
      ]);
      all.forEach((c, i) => expect([...c.target], c.key).toEqual([...want[i]!]));
    },
  );

  it('a corrupt stream throws from read()', () => {
    const reader = new FrameReader(() => new NoPayload());
    const into = reader.next();
    into.set(new Uint8Array(32).fill(0xff));
    expect(() => reader.read(32)).toThrow(/corrupt frame header/);
  });
});
