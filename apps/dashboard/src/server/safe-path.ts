// Maps a request path below the runs directory to a file on disk, or refuses it. Refused: '..'
// segments, absolute paths, backslashes, NUL, anything still percent-encoded after one decode
// (double encoding), and symlinks whose target lies outside the runs directory (checked on the real
// path). Test: cd apps/dashboard && npx vitest run src/server/safe-path.test.ts
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';

export class PathRefused extends Error {
  constructor(
    readonly status: 403 | 404,
    message: string,
  ) {
    super(message);
  }
}

/** Decodes one level of percent-encoding of a raw URL path part; refuses what stays suspicious. */
export function decodeRunPath(raw: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new PathRefused(403, `malformed percent-encoding in '${raw}'`);
  }
  // A second level of encoding (%252e -> %2e) has no business in a run file name.
  if (/%[0-9a-f]{2}/i.test(decoded)) throw new PathRefused(403, `'${raw}' is encoded twice`);
  if (decoded.includes('\0') || decoded.includes('\\'))
    throw new PathRefused(403, `'${raw}' holds NUL or a backslash`);
  if (decoded.startsWith('/') || isAbsolute(decoded) || /^[a-z]:/i.test(decoded)) {
    throw new PathRefused(403, `'${decoded}' is absolute; paths are relative to the runs directory`);
  }
  if (decoded.split('/').some((part) => part === '..' || part === '.')) {
    throw new PathRefused(403, `'${decoded}' has a '.' or '..' segment`);
  }
  return decoded;
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * The real path of `relativePath` (already decoded) under `runsDir`. 404 if it does not exist,
 * 403 if it, or a symlink on the way, leads outside the runs directory.
 */
export function resolveInRuns(runsDir: string, relativePath: string): string {
  const root = realpathSync(resolve(runsDir));
  const candidate = resolve(root, relativePath);
  if (!inside(root, candidate)) throw new PathRefused(403, `'${relativePath}' leaves the runs directory`);
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch {
    throw new PathRefused(404, `'${relativePath}' not found in the runs directory`);
  }
  if (!inside(root, real)) throw new PathRefused(403, `'${relativePath}' links outside the runs directory`);
  return real;
}

/** A run name is one plain path segment. */
export function checkRunName(name: string): string {
  const decoded = decodeRunPath(name);
  if (decoded === '' || decoded.includes('/')) throw new PathRefused(404, `'${decoded}' is not a run name`);
  return decoded;
}
