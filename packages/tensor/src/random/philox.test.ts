// Philox4x32 against the Random123 kat_vectors file (philox4x32 7 and 10 rounds) and against a BigInt
// reference that spells out each round, so a wrong multiplier, key bump or word order shows up.
// Run: cd packages/tensor && npx vitest run src/random/philox.test.ts
import { describe, expect, it } from 'vitest';
import { mulhi32, PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, philox4x32, philox4x32Fill } from './philox.js';

type Block = [number, number, number, number];
type Key = [number, number];

// Lines "philox4x32 R ctr0..3 key0..1 expected0..3" of Random123 examples/kat_vectors.
const KAT: { rounds: number; counter: Block; key: Key; expected: Block }[] = [
  {
    rounds: 10,
    counter: [0, 0, 0, 0],
    key: [0, 0],
    expected: [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
  },
  {
    rounds: 10,
    counter: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    key: [0xffffffff, 0xffffffff],
    expected: [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  },
  {
    rounds: 10,
    counter: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    key: [0xa4093822, 0x299f31d0],
    expected: [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  },
  {
    rounds: 7,
    counter: [0, 0, 0, 0],
    key: [0, 0],
    expected: [0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48],
  },
  {
    rounds: 7,
    counter: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    key: [0xffffffff, 0xffffffff],
    expected: [0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662],
  },
  {
    rounds: 7,
    counter: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    key: [0xa4093822, 0x299f31d0],
    expected: [0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a],
  },
];

// Random123 philox.h written out with BigInt: mulhilo, the round, then the key bump between rounds.
function philoxReference(counter: Block, key: Key, rounds: number): Block {
  const mask = 0xffffffffn;
  let [x0, x1, x2, x3] = counter.map(BigInt) as [bigint, bigint, bigint, bigint];
  let [k0, k1] = key.map(BigInt) as [bigint, bigint];
  for (let round = 0; round < rounds; round++) {
    if (round > 0) {
      k0 = (k0 + BigInt(PHILOX_W0)) & mask;
      k1 = (k1 + BigInt(PHILOX_W1)) & mask;
    }
    const product0 = BigInt(PHILOX_M0) * x0;
    const product1 = BigInt(PHILOX_M1) * x2;
    [x0, x1, x2, x3] = [
      (product1 >> 32n) ^ x1 ^ k0,
      product1 & mask,
      (product0 >> 32n) ^ x3 ^ k1,
      product0 & mask,
    ];
  }
  return [x0, x1, x2, x3].map(Number) as Block;
}

const hex = (words: ArrayLike<number>) => Array.from(words, (w) => w.toString(16).padStart(8, '0')).join(' ');

describe('philox4x32', () => {
  it.each(KAT.filter((v) => v.rounds === 10))('matches kat_vectors philox4x32 10 ctr=$counter', (v) => {
    expect(hex(philox4x32(v.counter, v.key))).toBe(hex(v.expected));
  });

  it.each(KAT)('BigInt reference reproduces kat_vectors philox4x32 $rounds ctr=$counter', (v) => {
    expect(hex(philoxReference(v.counter, v.key, v.rounds))).toBe(hex(v.expected));
  });

  it('mulhi32 is exact on edge and random operands', () => {
    const operands = [0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, PHILOX_M0, PHILOX_M1];
    let state = 12345;
    for (let i = 0; i < 200; i++) operands.push((state = (Math.imul(state, 1103515245) + 12345) >>> 0));
    for (const a of operands) {
      for (const b of operands.slice(0, 20)) {
        expect(mulhi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
      }
    }
  });

  it('fill matches one-block calls over a range, including the carry from c0 into c1..c3', () => {
    const key: Key = [0xdeadbeef, 0x01234567];
    const start: Block = [0xfffffffe, 0xffffffff, 0xffffffff, 0x00000007];
    const out = new Uint32Array(4 * 5 + 2);
    philox4x32Fill(key, start, 5, out, 2);
    const counters: Block[] = [
      [0xfffffffe, 0xffffffff, 0xffffffff, 7],
      [0xffffffff, 0xffffffff, 0xffffffff, 7],
      [0, 0, 0, 8],
      [1, 0, 0, 8],
      [2, 0, 0, 8],
    ];
    counters.forEach((counter, i) => {
      expect(hex(out.subarray(2 + 4 * i, 6 + 4 * i))).toBe(hex(philoxReference(counter, key, 10)));
    });
    expect(out[0]).toBe(0);
    expect(out[1]).toBe(0);
  });

  it('fill refuses to write past the end of out', () => {
    expect(() => philox4x32Fill([0, 0], [0, 0, 0, 0], 3, new Uint32Array(11))).toThrow(
      /need 12 words, out has 11/,
    );
  });
});
