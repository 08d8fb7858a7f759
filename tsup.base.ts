// Shared tsup settings: every package spreads these and names its own entries.
// ESM only, with type declarations and source maps, targeting Node 20.
import type { Options } from 'tsup';

export const baseTsup = {
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: false,
  treeshake: true,
} satisfies Options;
