// One writer per run directory: `grin train` holds runs/NAME/train.lock, a JSON file with the pid
// and host of the holder, created whole by a hard link (never seen half-written) and removed on
// exit. A live holder is refused, naming its pid; a lock left by a dead process on this host (or a
// torn one) is taken over with a message. Test: cd apps/trainer && npx vitest run src/train/run-lock.test.ts
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'train.lock';

export class RunLockedError extends Error {}

interface LockOwner {
  pid: number;
  host: string;
  started: string;
}

export interface RunLock {
  path: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function readOwner(path: string): { owner: LockOwner | null; text: string } | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null; // released in the meantime
  }
  try {
    const owner = JSON.parse(text) as LockOwner;
    return Number.isInteger(owner.pid) && typeof owner.host === 'string'
      ? { owner, text }
      : { owner: null, text };
  } catch {
    return { owner: null, text };
  }
}

/** Takes the lock of `runDir` (which must exist) or throws RunLockedError naming the holder. */
export function acquireRunLock(runDir: string, log: (line: string) => void): RunLock {
  const path = join(runDir, LOCK_FILE);
  const mine: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const draft = `${path}.${process.pid}`;
  writeFileSync(draft, `${JSON.stringify(mine)}\n`);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(draft, path);
        const lock: RunLock = {
          path,
          release: () => {
            process.off('exit', lock.release);
            if (readOwner(path)?.owner?.pid === process.pid) rmSync(path, { force: true });
          },
        };
        process.on('exit', lock.release);
        return lock;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const held = readOwner(path);
      if (!held) continue;
      const { owner } = held;
      if (owner && owner.host !== mine.host)
        throw new RunLockedError(
          `${runDir} is being trained by pid ${owner.pid} on host ${owner.host} (${path}); one writer per run. If that process is gone, delete ${path}`,
        );
      if (owner && alive(owner.pid))
        throw new RunLockedError(
          `${runDir} is being trained by pid ${owner.pid} (since ${owner.started}; ${path}); one writer per run: wait for it, stop it, or use another --name`,
        );
      // Stale: move it aside, and make sure what moved is the stale lock, not a newer live one.
      const aside = `${path}.stale-${process.pid}`;
      try {
        renameSync(path, aside);
      } catch {
        continue;
      }
      const moved = readFileSync(aside, 'utf8');
      if (moved !== held.text) {
        renameSync(aside, path);
        continue;
      }
      rmSync(aside, { force: true });
      log(
        owner
          ? `${path}: taking over the lock of pid ${owner.pid}, which is no longer running`
          : `${path}: taking over a torn lock file (${JSON.stringify(held.text.slice(0, 40))})`,
      );
    }
    throw new RunLockedError(
      `${path}: could not take the lock after 3 attempts; another process keeps taking it`,
    );
  } finally {
    rmSync(draft, { force: true });
  }
}
