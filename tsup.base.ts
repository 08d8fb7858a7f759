// Shared tsup settings: every package spreads these and names its own entries.
// ESM only, with type declarations and source maps, targeting Node 20.
import type { Options } from 'tsup';

export const baseTsup = {
  format: ['esm'],
  target: 'node20',
  // GRIN_FAST_BUILD=1 (pnpm train) skips type declarations: they are for consumers, not for running.
  dts: process.env.GRIN_FAST_BUILD !== '1',
  sourcemap: true,
  clean: true,
  splitting: false,
  treeshake: true,
} satisfies Options;
