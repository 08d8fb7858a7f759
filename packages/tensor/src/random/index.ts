// Public API of the seeded random numbers: Philox4x32-10 blocks, the Generator, the default generator.
// The stream contract is in generator.ts and ../../README-random.md. Test: npx vitest run src/random

export {
  type BlockReservation,
  type FloatArray,
  type FloatArrayFor,
  type FloatDType,
  FORK_TAG,
  Generator,
  type GeneratorState,
  PHILOX_ALGORITHM,
} from './generator.js';
export { DEFAULT_SEED, defaultGenerator, getRngState, manualSeed, setRngState } from './global.js';
export { mulhi32, PHILOX_ROUNDS, philox4x32, philox4x32Fill } from './philox.js';
