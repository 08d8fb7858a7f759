// Generator: the documented stream rebuilt from raw Philox blocks, call-boundary counting, determinism,
// save/restore continuation, fork independence, and the errors that name the bad field.
// Run: cd packages/tensor && npx vitest run src/random/generator.test.ts
import { describe, expect, it } from 'vitest';
import { FORK_TAG, Generator, type GeneratorState } from './generator.js';
import { philox4x32, philox4x32Fill } from './philox.js';
import { boundedUint, openUnitFloat32, openUnitFloat64, unitFloat32, unitFloat64 } from './transforms.js';

// The stream as README-random.md states it: blocks from the counter, ctr = (lo, hi, 0, 0).
function streamWords(key: [number, number], counter: bigint, wordCount: number): Uint32Array {
  const blocks = Math.ceil(wordCount / 4);
  const out = new Uint32Array(4 * blocks);
  philox4x32Fill(key, [Number(counter & 0xffffffffn), Number(counter >> 32n), 0, 0], blocks, out);
  return out;
}

describe('Generator stream contract', () => {
  it('the key is the seed split into low and high u32', () => {
    expect(new Generator(0x0123456789abcdefn).key).toEqual([0x89abcdef, 0x01234567]);
    expect(new Generator(7).key).toEqual([7, 0]);
  });

  it('uint32 words are Philox blocks from counter 0; each call rounds up to whole blocks', () => {
    const generator = new Generator(42);
    const first = generator.uint32(6); // 2 blocks, words 6 and 7 dropped
    expect(generator.counter).toBe(2n);
    const second = generator.uint32(3);
    expect(generator.counter).toBe(3n);
    const expected = streamWords([42, 0], 0n, 12);
    expect(Array.from(first)).toEqual(Array.from(expected.subarray(0, 6)));
    expect(Array.from(second)).toEqual(Array.from(expected.subarray(8, 11)));
    expect(Array.from(philox4x32([0, 0, 0, 0], [42, 0]))).toEqual(Array.from(expected.subarray(0, 4)));
  });

  it('every draw equals its README formula on the raw words and advances ceil(words / 4) blocks', () => {
    const seed = 2024n;
    const generator = new Generator(seed);
    const n = 5001; // odd and past one 4096-word chunk, so chunk and pair edges are both exercised
    const draws: [string, number, (words: Uint32Array, i: number) => number, () => ArrayLike<number>][] = [
      ['uniform f32', n, (w, i) => Math.fround(unitFloat32(w[i]!)), () => generator.uniform(n)],
      [
        'uniform f64',
        2 * n,
        (w, i) => unitFloat64(w[2 * i]!, w[2 * i + 1]!),
        () => generator.uniform(n, 'f64'),
      ],
      [
        'uniform f32 [-2, 3)',
        n,
        (w, i) => Math.fround(-2 + 5 * unitFloat32(w[i]!)),
        () => generator.uniform(n, 'f32', -2, 3),
      ],
      [
        'normal f32',
        n + 1,
        (w, i) => {
          const pair = i >> 1;
          const radius = Math.sqrt(-2 * Math.log(openUnitFloat32(w[2 * pair]!)));
          const angle = 2 * Math.PI * openUnitFloat32(w[2 * pair + 1]!);
          return Math.fround(radius * (i % 2 === 0 ? Math.cos(angle) : Math.sin(angle)));
        },
        () => generator.normal(n),
      ],
      [
        'normal f64 mean 3 std 2',
        2 * (n + 1),
        (w, i) => {
          const pair = i >> 1;
          const radius = Math.sqrt(-2 * Math.log(openUnitFloat64(w[4 * pair]!, w[4 * pair + 1]!)));
          const angle = 2 * Math.PI * openUnitFloat64(w[4 * pair + 2]!, w[4 * pair + 3]!);
          return 3 + 2 * radius * (i % 2 === 0 ? Math.cos(angle) : Math.sin(angle));
        },
        () => generator.normal(n, 'f64', 3, 2),
      ],
      [
        'exponential f32 rate 2',
        n,
        (w, i) => Math.fround((0 - Math.log(1 - unitFloat32(w[i]!))) / 2),
        () => generator.exponential(n, 'f32', 2),
      ],
      [
        'exponential f64',
        2 * n,
        (w, i) => 0 - Math.log(1 - unitFloat64(w[2 * i]!, w[2 * i + 1]!)),
        () => generator.exponential(n, 'f64'),
      ],
      [
        'gumbel f32',
        n,
        (w, i) => Math.fround(-Math.log(-Math.log(1 - openUnitFloat32(w[i]!)))),
        () => generator.gumbel(n),
      ],
      [
        'gumbel f64',
        2 * n,
        (w, i) => -Math.log(-Math.log(1 - openUnitFloat64(w[2 * i]!, w[2 * i + 1]!))),
        () => generator.gumbel(n, 'f64'),
      ],
      ['bernoulli 0.25', n, (w, i) => (w[i]! < 0.25 * 2 ** 32 ? 1 : 0), () => generator.bernoulli(n, 0.25)],
      [
        'randint [-5, 1000)',
        2 * n,
        (w, i) => -5 + boundedUint(w[2 * i]!, w[2 * i + 1]!, 1005),
        () => generator.randint(n, -5, 1000),
      ],
    ];
    for (const [name, wordCount, formula, draw] of draws) {
      const counter = generator.counter;
      const words = streamWords(generator.key, counter, wordCount);
      const values = Array.from(draw());
      expect(generator.counter - counter, name).toBe(BigInt(Math.ceil(wordCount / 4)));
      const expected = values.map((_, i) => formula(words, i));
      expect(values, name).toEqual(expected);
    }
  });

  it('permutation is Fisher-Yates driven by boundedUint on word pairs', () => {
    const generator = new Generator(9);
    const n = 2100;
    const words = streamWords(generator.key, 0n, 2 * (n - 1));
    const expected = Array.from({ length: n }, (_, i) => i);
    for (let k = 0; k < n - 1; k++) {
      const i = n - 1 - k;
      const j = boundedUint(words[2 * k]!, words[2 * k + 1]!, i + 1);
      [expected[i], expected[j]] = [expected[j]!, expected[i]!];
    }
    expect(Array.from(generator.permutation(n))).toEqual(expected);
    expect(generator.counter).toBe(BigInt(Math.ceil((2 * (n - 1)) / 4)));
    generator.permutation(1);
    generator.permutation(0);
    expect(generator.counter).toBe(BigInt(Math.ceil((2 * (n - 1)) / 4)));
  });

  it('boundedUint is floor(x * range / 2^64) exactly', () => {
    let state = 99;
    const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0);
    const ranges = [1, 2, 3, 7, 1000, 65535, 65536, 65537, 2 ** 31, 2 ** 32 - 1, 2 ** 32];
    for (let t = 0; t < 300; t++) {
      const first = t < 4 ? [0, 0xffffffff, 0x80000000, 1][t]! : next();
      const second = t < 4 ? [0, 0xffffffff, 0, 0xffffffff][t]! : next();
      const x = (BigInt(first) << 32n) | BigInt(second);
      for (const range of [...ranges, (next() % 1000000) + 1]) {
        expect(boundedUint(first, second, range)).toBe(Number((x * BigInt(range)) >> 64n));
      }
    }
  });

  it('counter carries from the low into the high word', () => {
    const generator = Generator.fromState({
      algorithm: 'philox4x32-10',
      key: '5',
      counter: String(2 ** 32 - 1),
    });
    const words = generator.uint32(8);
    expect(generator.counter).toBe(2n ** 32n + 1n);
    expect(Array.from(words.subarray(0, 4))).toEqual(philox4x32([0xffffffff, 0, 0, 0], [5, 0]));
    expect(Array.from(words.subarray(4, 8))).toEqual(philox4x32([0, 1, 0, 0], [5, 0]));
  });
});

describe('Generator state', () => {
  it('two generators with one seed give identical draws; different seeds differ', () => {
    const a = new Generator(123);
    const b = new Generator(123n);
    expect(Array.from(a.normal(1000))).toEqual(Array.from(b.normal(1000)));
    expect(Array.from(a.randint(100, 0, 10))).toEqual(Array.from(b.randint(100, 0, 10)));
    expect(Array.from(new Generator(124).uniform(8))).not.toEqual(Array.from(new Generator(123).uniform(8)));
  });

  it('getState after k calls, through JSON, reproduces the continuation exactly', () => {
    const mixedCalls = (g: Generator) => [
      Array.from(g.uniform(7)),
      Array.from(g.normal(5, 'f64')),
      Array.from(g.randint(9, -3, 3)),
      Array.from(g.permutation(11)),
      Array.from(g.gumbel(3)),
      Array.from(g.bernoulli(13, 0.5)),
    ];
    const original = new Generator(777);
    for (let k = 0; k < 3; k++) mixedCalls(original);
    const saved: GeneratorState = JSON.parse(JSON.stringify(original.getState()));
    const continued = mixedCalls(original);
    const resumed = Generator.fromState(saved);
    expect(mixedCalls(resumed)).toEqual(continued);
    const restoredInPlace = new Generator(1);
    restoredInPlace.setState(saved);
    expect(mixedCalls(restoredInPlace)).toEqual(continued);
    expect(restoredInPlace.getState()).toEqual(original.getState());
  });

  it('state is plain JSON with decimal strings for 64-bit values', () => {
    const generator = new Generator(2n ** 64n - 1n);
    generator.uniform(9);
    expect(generator.getState()).toEqual({
      algorithm: 'philox4x32-10',
      key: '18446744073709551615',
      counter: '3',
    });
  });

  it('clone is a separate generator at the same state', () => {
    const original = new Generator(5);
    original.uniform(3);
    const copy = original.clone();
    expect(Array.from(copy.uniform(10))).toEqual(Array.from(original.uniform(10)));
    copy.uniform(1);
    expect(copy.counter).not.toBe(original.counter);
  });

  it('setState names the bad field and leaves the generator unchanged', () => {
    const generator = new Generator(3);
    const before = generator.getState();
    const bad: [unknown, RegExp][] = [
      [null, /state must be an object/],
      [{ ...before, algorithm: 'mt19937' }, /state\.algorithm must be 'philox4x32-10', got "mt19937"/],
      [{ ...before, key: 12 }, /state\.key must be a decimal string.*got 12/],
      [{ ...before, key: '18446744073709551616' }, /state\.key .*\[0, 2\^64\)/],
      [{ ...before, counter: '-1' }, /state\.counter must be a decimal string.*got "-1"/],
      [{ ...before, counter: '0x10' }, /state\.counter/],
      [{ ...before, counter: undefined }, /state\.counter/],
    ];
    for (const [state, message] of bad) {
      expect(() => generator.setState(state as GeneratorState)).toThrow(message);
    }
    expect(generator.getState()).toEqual(before);
  });

  it('rejects bad seeds, counts and parameters with the method name', () => {
    expect(() => new Generator(-1)).toThrow(/Generator: seed must be an integer in \[0, 2\^53\)/);
    expect(() => new Generator(1.5)).toThrow(/seed/);
    expect(() => new Generator(2n ** 64n)).toThrow(/seed must be in \[0, 2\^64\)/);
    const generator = new Generator(0);
    expect(() => generator.uniform(-1)).toThrow(
      /Generator.uniform: n must be a non-negative integer, got -1/,
    );
    expect(() => generator.uniform(2, 'f16' as 'f32')).toThrow(/dtype must be 'f32' or 'f64', got "f16"/);
    expect(() => generator.uniform(2, 'f32', 1, 1)).toThrow(/need finite low < high/);
    expect(() => generator.normal(2, 'f32', 0, -1)).toThrow(/std >= 0/);
    expect(() => generator.exponential(2, 'f32', 0)).toThrow(/rate must be finite and > 0, got 0/);
    expect(() => generator.bernoulli(2, 1.5)).toThrow(/p must be in \[0, 1\], got 1.5/);
    expect(() => generator.randint(2, 0, 2 ** 31 + 1)).toThrow(/low < high <= 2\^31/);
    expect(() => generator.randint(2, 0.5, 3)).toThrow(/integers/);
    expect(generator.counter).toBe(0n);
  });

  it('refuses to run the counter up to 2^64', () => {
    const generator = Generator.fromState({
      algorithm: 'philox4x32-10',
      key: '1',
      counter: (2n ** 64n - 3n).toString(),
    });
    generator.uint32(8);
    expect(() => generator.uint32(1)).toThrow(/would reach 2\^64; fork a new stream/);
    expect(generator.counter).toBe(2n ** 64n - 1n);
  });

  it('reserveBlocks hands out (key, counter) and skips exactly those blocks', () => {
    const generator = new Generator(31);
    generator.uniform(4);
    const reservation = generator.reserveBlocks(10);
    expect(reservation).toEqual({ key: [31, 0], counter: [1, 0] });
    expect(generator.counter).toBe(11n);
    const reference = new Generator(31);
    reference.uint32(44);
    expect(Array.from(generator.uint32(4))).toEqual(Array.from(reference.uint32(4)));
  });
});

describe('Generator.fork', () => {
  it('derives the key from a fork-tagged block and starts at counter 0', () => {
    const parent = new Generator(1234);
    const block = philox4x32([7, 0, FORK_TAG, 0], [1234, 0]);
    const child = parent.fork(7);
    expect(child.key).toEqual([block[0], block[1]]);
    expect(child.counter).toBe(0n);
  });

  it('is pure: same id gives the same stream, and the parent does not advance', () => {
    const parent = new Generator(1234);
    const early = parent.fork(1).uniform(16);
    parent.uniform(100);
    const counter = parent.counter;
    const late = parent.fork(1n).uniform(16);
    expect(Array.from(late)).toEqual(Array.from(early));
    expect(parent.counter).toBe(counter);
  });

  it('streams of the parent, siblings, grandchildren and other parents all differ and do not correlate', () => {
    const parent = new Generator(1234);
    const streams = [
      parent.clone(),
      parent.fork(0),
      parent.fork(1),
      parent.fork(2n ** 63n),
      parent.fork(0).fork(0),
      new Generator(1235).fork(0),
    ].map((g) => g.uniform(20000, 'f64'));
    for (let a = 0; a < streams.length; a++) {
      for (let b = a + 1; b < streams.length; b++) {
        const x = streams[a]!;
        const y = streams[b]!;
        let same = 0;
        let covariance = 0;
        for (let i = 0; i < x.length; i++) {
          if (x[i] === y[i]) same++;
          covariance += (x[i]! - 0.5) * (y[i]! - 0.5);
        }
        // Correlation of independent uniforms has sd 1/sqrt(20000) = 0.007; 0.04 is ~5.7 sd.
        expect(same, `streams ${a} and ${b}`).toBe(0);
        expect(Math.abs((covariance / x.length) * 12), `streams ${a} and ${b}`).toBeLessThan(0.04);
      }
    }
  });

  it('rejects a negative stream id', () => {
    expect(() => new Generator(0).fork(-1)).toThrow(/Generator.fork: streamId must be an integer/);
  });
});
