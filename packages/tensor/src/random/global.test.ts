// The default generator: manualSeed resets it in place, get/setRngState resume it exactly.
// Run: cd packages/tensor && npx vitest run src/random/global.test.ts
import { describe, expect, it } from 'vitest';
import { Generator } from './generator.js';
import { DEFAULT_SEED, defaultGenerator, getRngState, manualSeed, setRngState } from './index.js';

describe('default generator', () => {
  it('starts from DEFAULT_SEED', () => {
    expect(getRngState()).toEqual(new Generator(DEFAULT_SEED).getState());
  });

  it('manualSeed matches a fresh Generator(seed) and keeps the same instance', () => {
    const held = defaultGenerator();
    defaultGenerator().uniform(10);
    const returned = manualSeed(42);
    expect(returned).toBe(held);
    expect(Array.from(held.normal(20))).toEqual(Array.from(new Generator(42).normal(20)));
  });

  it('getRngState / setRngState resume the continuation (checkpoint round trip through JSON)', () => {
    manualSeed(2025);
    defaultGenerator().uniform(33);
    const checkpoint = JSON.stringify(getRngState());
    const expected = Array.from(defaultGenerator().randint(50, 0, 1000));
    defaultGenerator().uniform(1000);
    setRngState(JSON.parse(checkpoint));
    expect(Array.from(defaultGenerator().randint(50, 0, 1000))).toEqual(expected);
  });

  it('setRngState rejects a bad state without touching the default generator', () => {
    manualSeed(1);
    const before = getRngState();
    expect(() => setRngState({ ...before, counter: 'ten' })).toThrow(/state\.counter/);
    expect(getRngState()).toEqual(before);
  });
});
