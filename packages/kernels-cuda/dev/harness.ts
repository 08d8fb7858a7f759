// Shared by every dev/ harness: the cuda check each one starts with and the validation block most
// of them repeat (checks against the CPU op collected into one Notes inside one scope, reported as a
// single `validate LABEL vs cpu` line). Kept apart from timing.ts, which only measures.
import * as T from '@grin-moe/tensor';
import { cudaStatus } from '../src/index.js';
import { Notes } from '../tests/cases/harness.js';

/** Prints `dev/NAME: cuda unavailable: REASON` and exits 1 unless the cuda backend is usable. */
export function requireCuda(name: string): void {
  const status = cudaStatus();
  if (!status.available) {
    console.log(`dev/${name}: cuda unavailable: ${status.reason}`);
    process.exit(1);
  }
}

/**
 * Runs fn in one scope with a fresh Notes and prints `validate LABEL vs cpu: ok, worst NOTE`, or
 * `validate LABEL vs cpu: FAIL MESSAGE` if it throws. Returns whether it passed.
 */
export function validate(label: string, fn: (notes: Notes) => void): boolean {
  const notes = new Notes();
  try {
    T.tidy(() => fn(notes));
    console.log(`validate ${label} vs cpu: ok, worst ${notes}`);
    return true;
  } catch (error) {
    console.log(`validate ${label} vs cpu: FAIL ${(error as Error).message}`);
    return false;
  }
}
