// Every TypeScript source file of the workspace (packages/*/src, apps/*/src) says in its opening
// comment block how to test it: a `Test:` line with the command (`Run:` in a test file). Files that
// do not yet are listed in STILL_WITHOUT, which may only shrink: a new file without the line, or a
// listed file that gained it, fails here. Run: cd apps/trainer && npx vitest run src/file-headers
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const SAYS_HOW_TO_TEST = /\b(Test|Tests|Run):|npx vitest|vitest run/i;

/** Files owned by other work in progress when this check was added; each gains its line there. */
const STILL_WITHOUT = new Set<string>([]);

/** The comment lines a file opens with (after a #! line). */
function openingComment(text: string): string {
  const lines = text.split('\n');
  const start = lines[0]?.startsWith('#!') ? 1 : 0;
  const end = lines.findIndex((line, i) => i >= start && !line.startsWith('//'));
  return lines.slice(start, end < 0 ? lines.length : end).join('\n');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const files = ['packages', 'apps'].flatMap((group) =>
  readdirSync(join(root, group), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => {
      try {
        return sourceFiles(join(root, group, entry.name, 'src'));
      } catch {
        return []; // a package without src/
      }
    })
    .map((path) => relative(root, path).split('\\').join('/')),
);

describe('source file headers', () => {
  it('every source file says how to test it in its opening comment', () => {
    expect(files.length).toBeGreaterThan(100);
    const without = files.filter(
      (file) => !SAYS_HOW_TO_TEST.test(openingComment(readFileSync(join(root, file), 'utf8'))),
    );
    expect(
      without.filter((file) => !STILL_WITHOUT.has(file)),
      'files without a Test:/Run: line',
    ).toEqual([]);
    expect(
      [...STILL_WITHOUT].filter((file) => files.includes(file) && !without.includes(file)),
      'listed in STILL_WITHOUT but now say how to test them: remove them from the list',
    ).toEqual([]);
  });
});
