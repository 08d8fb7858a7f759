// The process-wide default generator (torch.manual_seed / get_rng_state analogue) for code that takes no
// explicit Generator. Seeded with DEFAULT_SEED at load, so even an unseeded run is reproducible.
// Test: cd packages/tensor && npx vitest run src/random/global.test.ts

import { Generator, type GeneratorState } from './generator.js';

export const DEFAULT_SEED = 0;

// One instance for the life of the process: manualSeed and setRngState rewrite its state in place, so
// references taken earlier through defaultGenerator() keep seeing the reseeded stream.
const defaultInstance = new Generator(DEFAULT_SEED);

export function defaultGenerator(): Generator {
  return defaultInstance;
}

/** Resets the default generator to new Generator(seed)'s state (key = seed, counter = 0); returns it. */
export function manualSeed(seed: number | bigint): Generator {
  defaultInstance.setState(new Generator(seed).getState());
  return defaultInstance;
}

/** The default generator's state, JSON-safe, for a checkpoint. */
export function getRngState(): GeneratorState {
  return defaultInstance.getState();
}

/** Restores a state from getRngState() (resume); validates every field before changing anything. */
export function setRngState(state: GeneratorState): void {
  defaultInstance.setState(state);
}
