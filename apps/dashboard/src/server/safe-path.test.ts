// decodeRunPath / resolveInRuns in isolation: what is decoded, what is refused and with which status.
// Run: cd apps/dashboard && npx vitest run src/server/safe-path
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkRunName, decodeRunPath, type PathRefused, resolveInRuns } from './safe-path.js';

const status = (fn: () => unknown) => {
  try {
    fn();
    return 200;
  } catch (error) {
    return (error as PathRefused).status;
  }
};

describe('safe paths', () => {
  it('decodes one level and keeps ordinary names', () => {
    expect(decodeRunPath('routing/expert-load.json')).toBe('routing/expert-load.json');
    expect(decodeRunPath('my%20run/metrics.jsonl')).toBe('my run/metrics.jsonl');
  });

  it.each([
    '..',
    'a/../../b',
    '..%2fb',
    '%2e%2e/b',
    '%252e%252e%252f',
    '/etc/passwd',
    '%2fetc',
    'a\\..\\b',
    'a%00',
    '%zz',
    './a',
    'C:/x',
  ])('refuses %s with 403', (raw) => {
    expect(status(() => decodeRunPath(raw))).toBe(403);
  });

  it('resolves inside the root, 404s the absent, 403s symlinks that leave', () => {
    const root = mkdtempSync(join(tmpdir(), 'grin-safe-path-'));
    mkdirSync(join(root, 'runs', 'a'), { recursive: true });
    writeFileSync(join(root, 'runs', 'a', 'x.json'), '{}');
    writeFileSync(join(root, 'outside.json'), '{}');
    symlinkSync(join(root, 'outside.json'), join(root, 'runs', 'a', 'out.json'));
    const runs = join(root, 'runs');
    expect(resolveInRuns(runs, 'a/x.json')).toBe(join(runs, 'a', 'x.json'));
    expect(status(() => resolveInRuns(runs, 'a/missing.json'))).toBe(404);
    expect(status(() => resolveInRuns(runs, 'a/out.json'))).toBe(403);
    expect(status(() => resolveInRuns(runs, '../outside.json'))).toBe(403);
    expect(status(() => checkRunName('a%2fb'))).toBe(404);
  });
});
