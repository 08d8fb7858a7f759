// Output paths (`train --out`, eval and logits `--out`) checked before any work: the directory is
// made one level at a time (a recursive mkdir under /proc loops forever at 100% CPU) and proven
// writable with a probe file, so an unusable path is a clear error within a second, not a hang or
// a result computed and then lost. Test: cd apps/trainer && npx vitest run src/output-path.test.ts
import { closeSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export class OutputPathError extends Error {}

const reason = (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message;

/** Makes `dir` and its missing parents, then checks that a file can be created in it. */
export function prepareOutputDir(dir: string, what: string, shown = dir): string {
  const target = resolve(dir);
  const missing: string[] = [];
  let existing = target;
  for (;;) {
    let stat: ReturnType<typeof statSync> | undefined;
    try {
      stat = statSync(existing);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new OutputPathError(`${what} ${shown}: cannot use ${existing} (${reason(error)})`);
    }
    if (stat) {
      if (!stat.isDirectory())
        throw new OutputPathError(`${what} ${shown}: ${existing} is a file, not a directory`);
      break;
    }
    missing.unshift(existing);
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  for (const level of missing) {
    try {
      mkdirSync(level);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new OutputPathError(`${what} ${shown}: cannot create ${level} (${reason(error)})`);
    }
  }
  const probe = join(target, `.grin-write-probe-${process.pid}`);
  try {
    closeSync(openSync(probe, 'wx'));
    rmSync(probe, { force: true });
  } catch (error) {
    throw new OutputPathError(`${what} ${shown}: the directory is not writable (${reason(error)})`);
  }
  return target;
}

/** Checks that `file` can be written: its directory as above, and no directory in its place. */
export function checkOutputFile(file: string, what: string): string {
  const target = resolve(file);
  prepareOutputDir(dirname(target), what, file);
  try {
    if (statSync(target).isDirectory())
      throw new OutputPathError(`${what} ${file}: is a directory; give a file name`);
  } catch (error) {
    if (error instanceof OutputPathError) throw error;
  }
  return target;
}
