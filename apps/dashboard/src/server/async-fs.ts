// File reads for the dashboard server that cannot freeze it: every call is asynchronous with a
// timeout (504), only regular files are opened (a FIFO named metrics.jsonl would block an open or a
// read forever; a directory is refused), opened non-blocking and re-checked on the descriptor, and
// read in bounded chunks. Errors are ServeErrors carrying the HTTP status to answer with.
// Test: cd apps/dashboard && npx vitest run src/server/hardening.test.ts
import { constants, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';

export class ServeError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const FS_TIMEOUT_MS = 5000;

/** `promise`, or a 504 ServeError naming `what` once `ms` have passed. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(
      () => fail(new ServeError(504, `${what}: no answer from the file system within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** stat, or null when the path does not exist. */
export async function statOrNull(path: string, what: string): Promise<Stats | null> {
  try {
    return await withTimeout(stat(path), FS_TIMEOUT_MS, what);
  } catch (error) {
    if (
      (error as NodeJS.ErrnoException).code === 'ENOENT' ||
      (error as NodeJS.ErrnoException).code === 'ENOTDIR'
    )
      return null;
    throw error;
  }
}

export async function exists(path: string): Promise<boolean> {
  return (await statOrNull(path, path).catch(() => null)) !== null;
}

/**
 * Up to `maxBytes` of a regular file from `offset` (clamped to the size), with the file's size.
 * `what` names the file in errors (a path relative to the runs directory).
 */
export async function readRegularFile(
  path: string,
  what: string,
  offset = 0,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<{ bytes: Buffer; size: number; start: number }> {
  const before = await statOrNull(path, what);
  if (!before) throw new ServeError(404, `${what} not found`);
  if (!before.isFile()) throw new ServeError(500, `${what} is not a regular file (a directory or a FIFO?)`);
  const handle = await withTimeout(
    open(path, constants.O_RDONLY | constants.O_NONBLOCK),
    FS_TIMEOUT_MS,
    what,
  );
  try {
    // The path may have been swapped between stat and open: check what was actually opened.
    const info = await withTimeout(handle.stat(), FS_TIMEOUT_MS, what);
    if (!info.isFile()) throw new ServeError(500, `${what} is not a regular file (a directory or a FIFO?)`);
    const start = offset > info.size ? 0 : offset;
    const length = Math.min(info.size - start, maxBytes);
    const bytes = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const { bytesRead } = await withTimeout(
        handle.read(bytes, read, length - read, start + read),
        FS_TIMEOUT_MS,
        what,
      );
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return { bytes: bytes.subarray(0, read), size: info.size, start };
  } finally {
    void handle.close().catch(() => {});
  }
}
