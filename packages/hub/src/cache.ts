// The Hugging Face cache layout, shared with Python's huggingface_hub so that either side reuses
// the other's downloads: CACHE/{models,datasets}--ORG--NAME/ holds blobs/<etag> (file contents),
// refs/<revision> (a commit hash) and snapshots/<commit>/<path> (relative symlinks into blobs).
// Test: cd packages/hub && npx vitest run src/cache
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { COMMIT_HASH, type RepoRef } from './repo-id.js';

export interface RepoCache {
  /** CACHE/models--ORG--NAME */
  folder: string;
  blob(etag: string): string;
  snapshot(commit: string): string;
  /** The commit a branch or tag last resolved to here, or null; a commit hash is its own answer. */
  readRef(revision: string): string | null;
  writeRef(revision: string, commit: string): void;
  /** Points snapshots/<commit>/<path> at blobs/<etag> with a relative link, as Python does. */
  link(commit: string, path: string, etag: string): string;
}

export function repoCache(cacheDir: string, ref: Pick<RepoRef, 'type' | 'name'>): RepoCache {
  const folder = join(cacheDir, `${ref.type}s--${ref.name.split('/').join('--')}`);
  const snapshot = (commit: string) => join(folder, 'snapshots', commit);
  const blob = (etag: string) => join(folder, 'blobs', etag);
  return {
    folder,
    blob,
    snapshot,
    readRef(revision) {
      if (COMMIT_HASH.test(revision)) return revision;
      const path = join(folder, 'refs', revision);
      if (!existsSync(path)) return null;
      const commit = readFileSync(path, 'utf8').trim();
      return COMMIT_HASH.test(commit) ? commit : null;
    },
    writeRef(revision, commit) {
      if (revision === commit) return;
      const path = join(folder, 'refs', revision);
      mkdirSync(dirname(path), { recursive: true });
      // Written whole then renamed, so a reader never sees half a hash.
      writeFileSync(`${path}.tmp-${process.pid}`, commit);
      renameSync(`${path}.tmp-${process.pid}`, path);
    },
    link(commit, path, etag) {
      const target = join(snapshot(commit), path);
      mkdirSync(dirname(target), { recursive: true });
      // A link made beside the target then renamed over it: the path is never missing or half made,
      // even with another process (ours or Python's) linking the same file.
      const temporary = `${target}.link-${process.pid}`;
      rmSync(temporary, { force: true });
      symlinkSync(relative(dirname(target), blob(etag)), temporary);
      renameSync(temporary, target);
      return target;
    },
  };
}
