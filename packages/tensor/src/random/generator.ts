// Seeded, resumable Philox4x32-10 generator: state is (64-bit key, 64-bit block counter), nothing else.
// Draws fill typed arrays; the stream below is the contract a CUDA kernel follows to reproduce them.
// Test: cd packages/tensor && npx vitest run src/random/generator.test.ts
//
// THE STREAM (also in packages/tensor/README-random.md)
//   key = (k0, k1): new Generator(seed) uses k0 = seed mod 2^32, k1 = floor(seed / 2^32).
//   Block b (0 <= b < 2^64) = philox4x32_10(ctr = (b mod 2^32, floor(b / 2^32), 0, 0), key) -> 4 words.
//   A call needing W words with counter C reads blocks C .. C+B-1, B = ceil(W / 4): word j of the call
//   is word (j mod 4) of block C + floor(j / 4). Then C += B; unused words of the last block are dropped.
//   Words per value: uint32, uniform f32, exponential f32, gumbel f32, bernoulli: 1 (4 per block);
//   uniform/exponential/gumbel f64, randint, permutation: 2 (value i = words 2i, 2i+1);
//   normal: pairs, f32 words 2i, 2i+1 -> values 2i, 2i+1; f64 words 4i .. 4i+3 -> values 2i, 2i+1;
//   an odd n still uses a whole pair for its last value. Formulas are in transforms.ts.
//   fork(s) derives key' = words 0, 1 of philox4x32_10(ctr = (s mod 2^32, floor(s / 2^32), FORK_TAG, 0), key),
//   counter' = 0; the main stream never uses ctr[2] != 0, so the derivation block is never also an output.

import { philox4x32, philox4x32Fill } from './philox.js';
import {
  boundedUint,
  float32Below,
  float64Below,
  openUnitFloat32,
  openUnitFloat64,
  unitFloat32,
  unitFloat64,
} from './transforms.js';

export type FloatDType = 'f32' | 'f64';
export type FloatArrayFor<D extends FloatDType> = D extends 'f64' ? Float64Array : Float32Array;
export type FloatArray = Float32Array | Float64Array;

export const PHILOX_ALGORITHM = 'philox4x32-10';
/** ctr[2] of the block that derives a forked key: ASCII "fork", so fork blocks are never stream blocks. */
export const FORK_TAG = 0x666f726b;

/** JSON-safe generator state; 64-bit numbers are decimal strings. key equals the seed unless forked. */
export interface GeneratorState {
  algorithm: typeof PHILOX_ALGORITHM;
  key: string;
  counter: string;
}

/** Where a GPU kernel starts: block b of the reservation uses ctr = counter + b (64-bit), ctr[2..3] = 0. */
export interface BlockReservation {
  key: [number, number];
  counter: [number, number];
}

const TWO_POW_32 = 2 ** 32;
const TWO_POW_64 = 1n << 64n;
// 16 KiB of words per Philox fill: large draws run in chunks instead of allocating 4 words per value.
const CHUNK_BLOCKS = 1024;
const chunkWords = new Uint32Array(4 * CHUNK_BLOCKS);
const TWO_PI = 2 * Math.PI;

type WordVisitor = (words: Uint32Array, wordCount: number, firstWord: number) => void;

export class Generator {
  private key0 = 0;
  private key1 = 0;
  private counterLo = 0;
  private counterHi = 0;

  constructor(seed: number | bigint) {
    const value = toUint64('Generator: seed', seed);
    this.key0 = Number(value & 0xffffffffn);
    this.key1 = Number(value >> 32n);
  }

  /** A generator at exactly this state, as produced by getState(). */
  static fromState(state: GeneratorState): Generator {
    const generator = new Generator(0);
    generator.setState(state);
    return generator;
  }

  get key(): [number, number] {
    return [this.key0, this.key1];
  }

  /** Blocks of 4 words consumed so far. */
  get counter(): bigint {
    return (BigInt(this.counterHi) << 32n) | BigInt(this.counterLo);
  }

  getState(): GeneratorState {
    return {
      algorithm: PHILOX_ALGORITHM,
      key: ((BigInt(this.key1) << 32n) | BigInt(this.key0)).toString(),
      counter: this.counter.toString(),
    };
  }

  setState(state: GeneratorState): void {
    if (typeof state !== 'object' || state === null) {
      throw new TypeError(
        `Generator.setState: state must be an object from getState(), got ${String(state)}`,
      );
    }
    if (state.algorithm !== PHILOX_ALGORITHM) {
      throw new Error(
        `Generator.setState: state.algorithm must be '${PHILOX_ALGORITHM}', got ${JSON.stringify(state.algorithm)}`,
      );
    }
    const key = parseUint64String('state.key', state.key);
    const counter = parseUint64String('state.counter', state.counter);
    this.key0 = Number(key & 0xffffffffn);
    this.key1 = Number(key >> 32n);
    this.counterLo = Number(counter & 0xffffffffn);
    this.counterHi = Number(counter >> 32n);
  }

  clone(): Generator {
    return Generator.fromState(this.getState());
  }

  /**
   * An independent stream (new key, counter 0) named by streamId, e.g. a rank or a purpose. Pure:
   * it does not advance this generator, and fork(id) gives the same stream whenever it is called.
   */
  fork(streamId: number | bigint): Generator {
    const id = toUint64('Generator.fork: streamId', streamId);
    const block = philox4x32(
      [Number(id & 0xffffffffn), Number(id >> 32n), FORK_TAG, 0],
      [this.key0, this.key1],
    );
    const child = new Generator(0);
    child.key0 = block[0];
    child.key1 = block[1];
    return child;
  }

  /** Hands blockCount blocks to an outside kernel (e.g. CUDA) and advances past them. */
  reserveBlocks(blockCount: number): BlockReservation {
    checkCount('Generator.reserveBlocks: blockCount', blockCount);
    const reservation: BlockReservation = { key: this.key, counter: [this.counterLo, this.counterHi] };
    this.advance(blockCount);
    return reservation;
  }

  uint32(n: number): Uint32Array {
    return this.fillUint32(new Uint32Array(checkCount('Generator.uint32: n', n)));
  }

  fillUint32(out: Uint32Array): Uint32Array {
    this.consumeWords(out.length, (words, count, first) => out.set(words.subarray(0, count), first));
    return out;
  }

  /** Uniform in [low, high): low + (high - low) * u in f64, rounded to dtype, kept below high. */
  uniform<D extends FloatDType = 'f32'>(
    n: number,
    dtype: D = 'f32' as D,
    low = 0,
    high = 1,
  ): FloatArrayFor<D> {
    return this.fillUniform(allocate('Generator.uniform', n, dtype), low, high) as FloatArrayFor<D>;
  }

  fillUniform(out: FloatArray, low = 0, high = 1): FloatArray {
    if (!(Number.isFinite(low) && Number.isFinite(high) && low < high)) {
      throw new RangeError(`Generator.uniform: need finite low < high, got low=${low}, high=${high}`);
    }
    const scale = high - low;
    if (out instanceof Float32Array) {
      const ceiling = float32Below(high);
      this.consumeWords(out.length, (words, count, first) => {
        for (let j = 0; j < count; j++) {
          const value = Math.fround(low + scale * unitFloat32(words[j]!));
          out[first + j] = value >= high ? ceiling : value;
        }
      });
    } else {
      const ceiling = float64Below(high);
      this.consumeWords(2 * out.length, (words, count, first) => {
        for (let j = 0; j < count; j += 2) {
          const value = low + scale * unitFloat64(words[j]!, words[j + 1]!);
          out[(first + j) / 2] = value >= high ? ceiling : value;
        }
      });
    }
    return out;
  }

  /** Box-Muller: r = sqrt(-2 log u1), t = 2 pi u2; values mean + std * r cos t, mean + std * r sin t. */
  normal<D extends FloatDType = 'f32'>(
    n: number,
    dtype: D = 'f32' as D,
    mean = 0,
    std = 1,
  ): FloatArrayFor<D> {
    return this.fillNormal(allocate('Generator.normal', n, dtype), mean, std) as FloatArrayFor<D>;
  }

  fillNormal(out: FloatArray, mean = 0, std = 1): FloatArray {
    if (!(Number.isFinite(mean) && Number.isFinite(std) && std >= 0)) {
      throw new RangeError(`Generator.normal: need finite mean and std >= 0, got mean=${mean}, std=${std}`);
    }
    const n = out.length;
    const pairs = Math.ceil(n / 2);
    const is32 = out instanceof Float32Array;
    const wordsPerPair = is32 ? 2 : 4;
    this.consumeWords(wordsPerPair * pairs, (words, count, first) => {
      for (let j = 0; j < count; j += wordsPerPair) {
        const u1 = is32 ? openUnitFloat32(words[j]!) : openUnitFloat64(words[j]!, words[j + 1]!);
        const u2 = is32 ? openUnitFloat32(words[j + 1]!) : openUnitFloat64(words[j + 2]!, words[j + 3]!);
        const radius = Math.sqrt(-2 * Math.log(u1));
        const angle = TWO_PI * u2;
        const index = (2 * (first + j)) / wordsPerPair;
        out[index] = mean + std * radius * Math.cos(angle);
        if (index + 1 < n) out[index + 1] = mean + std * radius * Math.sin(angle);
      }
    });
    return out;
  }

  /** (0 - log(1 - u)) / rate with u in [0, 1): finite and >= +0 (the 0 - keeps -0 out). */
  exponential<D extends FloatDType = 'f32'>(n: number, dtype: D = 'f32' as D, rate = 1): FloatArrayFor<D> {
    return this.fillExponential(allocate('Generator.exponential', n, dtype), rate) as FloatArrayFor<D>;
  }

  fillExponential(out: FloatArray, rate = 1): FloatArray {
    if (!(Number.isFinite(rate) && rate > 0)) {
      throw new RangeError(`Generator.exponential: rate must be finite and > 0, got ${rate}`);
    }
    if (out instanceof Float32Array) {
      this.consumeWords(out.length, (words, count, first) => {
        for (let j = 0; j < count; j++) out[first + j] = (0 - Math.log(1 - unitFloat32(words[j]!))) / rate;
      });
    } else {
      this.consumeWords(2 * out.length, (words, count, first) => {
        for (let j = 0; j < count; j += 2) {
          out[(first + j) / 2] = (0 - Math.log(1 - unitFloat64(words[j]!, words[j + 1]!))) / rate;
        }
      });
    }
    return out;
  }

  /** Standard Gumbel: -log(-log(1 - u)) with u in (0, 1) (open uniform), so never infinite. */
  gumbel<D extends FloatDType = 'f32'>(n: number, dtype: D = 'f32' as D): FloatArrayFor<D> {
    return this.fillGumbel(allocate('Generator.gumbel', n, dtype)) as FloatArrayFor<D>;
  }

  fillGumbel(out: FloatArray): FloatArray {
    if (out instanceof Float32Array) {
      this.consumeWords(out.length, (words, count, first) => {
        for (let j = 0; j < count; j++) out[first + j] = -Math.log(-Math.log(1 - openUnitFloat32(words[j]!)));
      });
    } else {
      this.consumeWords(2 * out.length, (words, count, first) => {
        for (let j = 0; j < count; j += 2) {
          out[(first + j) / 2] = -Math.log(-Math.log(1 - openUnitFloat64(words[j]!, words[j + 1]!)));
        }
      });
    }
    return out;
  }

  /** 1 where word < p * 2^32 (exact integer compare), so P(1) = ceil(p * 2^32) / 2^32. */
  bernoulli(n: number, p: number): Uint8Array {
    return this.fillBernoulli(new Uint8Array(checkCount('Generator.bernoulli: n', n)), p);
  }

  fillBernoulli(out: Uint8Array, p: number): Uint8Array {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Generator.bernoulli: p must be in [0, 1], got ${p}`);
    const threshold = p * TWO_POW_32;
    this.consumeWords(out.length, (words, count, first) => {
      for (let j = 0; j < count; j++) out[first + j] = words[j]! < threshold ? 1 : 0;
    });
    return out;
  }

  /** Integers in [low, high) by 64-bit multiply-shift (transforms.ts boundedUint: bias <= 2^-64). */
  randint(n: number, low: number, high: number): Int32Array {
    return this.fillRandint(new Int32Array(checkCount('Generator.randint: n', n)), low, high);
  }

  fillRandint(out: Int32Array, low: number, high: number): Int32Array {
    if (
      !(Number.isInteger(low) && Number.isInteger(high) && low < high && low >= -(2 ** 31) && high <= 2 ** 31)
    ) {
      throw new RangeError(
        `Generator.randint: need integers -2^31 <= low < high <= 2^31 (int32 results), got low=${low}, high=${high}`,
      );
    }
    const range = high - low;
    this.consumeWords(2 * out.length, (words, count, first) => {
      for (let j = 0; j < count; j += 2)
        out[(first + j) / 2] = low + boundedUint(words[j]!, words[j + 1]!, range);
    });
    return out;
  }

  /**
   * Fisher-Yates from the identity: draw k (k = 0 .. n-2) uses words 2k, 2k+1 to pick
   * j = boundedUint(range i + 1) for i = n-1-k and swaps positions i and j.
   */
  permutation(n: number): Int32Array {
    checkCount('Generator.permutation: n', n);
    if (n > 2 ** 31 - 1) throw new RangeError(`Generator.permutation: n must fit in int32, got ${n}`);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    const draws = Math.max(0, n - 1);
    this.consumeWords(2 * draws, (words, count, first) => {
      for (let j = 0; j < count; j += 2) {
        const i = n - 1 - (first + j) / 2;
        const pick = boundedUint(words[j]!, words[j + 1]!, i + 1);
        const held = out[i]!;
        out[i] = out[pick]!;
        out[pick] = held;
      }
    });
    return out;
  }

  // Feeds wordCount words to visit in chunks (each chunk a whole number of blocks), then leaves the
  // counter ceil(wordCount / 4) blocks further on.
  private consumeWords(wordCount: number, visit: WordVisitor): void {
    const blocks = Math.ceil(wordCount / 4);
    this.checkRoom(blocks);
    for (let done = 0; done < blocks; ) {
      const chunk = Math.min(CHUNK_BLOCKS, blocks - done);
      philox4x32Fill([this.key0, this.key1], [this.counterLo, this.counterHi, 0, 0], chunk, chunkWords, 0);
      visit(chunkWords, Math.min(4 * chunk, wordCount - 4 * done), 4 * done);
      this.advance(chunk);
      done += chunk;
    }
  }

  private advance(blocks: number): void {
    this.checkRoom(blocks);
    const low = this.counterLo + blocks;
    this.counterLo = low % TWO_POW_32;
    this.counterHi += Math.floor(low / TWO_POW_32);
  }

  private checkRoom(blocks: number): void {
    // The counter stays below 2^64 so that every state is one getState() can write; block 2^64 - 1 is unused.
    if (this.counter + BigInt(blocks) >= TWO_POW_64) {
      throw new RangeError(
        `Generator: counter ${this.counter} + ${blocks} blocks would reach 2^64; fork a new stream`,
      );
    }
  }
}

function checkCount(what: string, n: number): number {
  if (!(Number.isSafeInteger(n) && n >= 0))
    throw new RangeError(`${what} must be a non-negative integer, got ${n}`);
  return n;
}

function allocate(what: string, n: number, dtype: FloatDType): FloatArray {
  checkCount(`${what}: n`, n);
  if (dtype === 'f32') return new Float32Array(n);
  if (dtype === 'f64') return new Float64Array(n);
  throw new RangeError(`${what}: dtype must be 'f32' or 'f64', got ${JSON.stringify(dtype)}`);
}

function toUint64(what: string, value: number | bigint): bigint {
  if (typeof value === 'number') {
    if (!(Number.isSafeInteger(value) && value >= 0)) {
      throw new RangeError(
        `${what} must be an integer in [0, 2^53) as a number (use a bigint up to 2^64), got ${value}`,
      );
    }
    return BigInt(value);
  }
  if (typeof value === 'bigint') {
    if (value < 0n || value >= TWO_POW_64)
      throw new RangeError(`${what} must be in [0, 2^64), got ${value}n`);
    return value;
  }
  throw new TypeError(`${what} must be a number or bigint, got ${typeof value}`);
}

function parseUint64String(field: string, text: unknown): bigint {
  if (typeof text !== 'string' || !/^(0|[1-9][0-9]*)$/.test(text) || BigInt(text) >= TWO_POW_64) {
    throw new RangeError(
      `Generator.setState: ${field} must be a decimal string of an integer in [0, 2^64), got ${JSON.stringify(text)}`,
    );
  }
  return BigInt(text);
}
