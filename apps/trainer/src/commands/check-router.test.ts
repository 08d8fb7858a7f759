// `grin check-router` end to end: passes on a committed PyTorch dump, fails (exit 1) when the
// router under test is not the one that produced it, and names a missing file.
// Run: cd apps/trainer && npx vitest run src/commands/check-router
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { checkRouterCommand } from './check-router.js';

const fixture = join(
  import.meta.dirname,
  '../../../../packages/router-sparsemixer/fixtures/random-t64-e16.safetensors',
);

async function run(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  try {
    return { code: await checkRouterCommand.run(argv), out };
  } finally {
    spy.mockRestore();
  }
}

describe('grin check-router', () => {
  it('accepts our sparsemixer-v2 against the PyTorch dump', async () => {
    const { code, out } = await run(['--reference', fixture]);
    expect(out).toMatch(/ok {3}selected/);
    expect(out).toMatch(/ok {3}grad_scores +max abs \S+ +max rel \S+/);
    expect(code).toBe(0);
  });
  it('rejects a router that is not the reference one', async () => {
    const { code, out } = await run(['--reference', fixture, '--router', 'gshard-top2']);
    expect(out).toMatch(/FAIL/);
    expect(code).toBe(1);
  });
  it('prints JSON and names bad input', async () => {
    const { out } = await run(['--reference', fixture, '--json']);
    expect(JSON.parse(out).ok).toBe(true);
    await expect(run(['--reference', '/nonexistent.safetensors'])).rejects.toThrow(/nonexistent/);
    await expect(run([])).rejects.toThrow(/--reference FILE is required/);
  });
});
