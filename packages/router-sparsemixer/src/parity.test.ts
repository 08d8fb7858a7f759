// Parity with transformers' `sparsemixer`: every committed PyTorch dump (tools/reference/
// sparsemixer_dump.py) replayed with its recorded draws gives the same experts, and weights and
// router gradients within 1e-6 relative (f64) or 1e-4 (f32).
// Run: cd packages/router-sparsemixer && npx vitest run src/parity
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkRouterAgainst, readReference } from './index.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const dumps = readdirSync(fixtures).filter((f) => f.endsWith('.safetensors'));

describe('sparsemixer-v2 matches the PyTorch reference', () => {
  it('has dumps to check', () => expect(dumps.length).toBeGreaterThanOrEqual(5));
  it.each(dumps)('%s', (file) => {
    const result = checkRouterAgainst(readReference(join(fixtures, file)));
    for (const c of result.comparisons) {
      expect({ name: c.name, ok: c.ok, maxRel: c.maxRel, mismatches: c.mismatches ?? 0 }).toMatchObject({
        name: c.name,
        ok: true,
      });
    }
  });
});
