// Hub repository ids as users type them: `ORG/NAME` or `ORG/NAME@revision` (a branch, tag or
// commit; `refs/convert/parquet` style revisions keep their slashes), for models and datasets.
// Test: cd packages/hub && npx vitest run src/repo-id
import { HubError } from './errors.js';

export type RepoType = 'model' | 'dataset';

export interface RepoRef {
  type: RepoType;
  /** `ORG/NAME` */
  name: string;
  /** What the user asked for; `main` when they named none. */
  revision: string;
}

// The Hub's own rule for names: letters, digits, '-', '_', '.', not starting or ending with '-'
// or '.', no '--' or '..' (those would collide with the cache folder separator).
const PART = /^(?![-.])(?!.*(--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![-.])$/;

/** True when `text` has the shape of a Hub id (it may still be a local path: callers check that first). */
export function looksLikeRepoId(text: string): boolean {
  const [name, revision] = splitRevision(text);
  if (revision === '') return false;
  const parts = name.split('/');
  return parts.length === 2 && parts.every((p) => PART.test(p));
}

function splitRevision(text: string): [string, string | undefined] {
  const at = text.indexOf('@');
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

export function parseRepoRef(text: string, type: RepoType): RepoRef {
  if (!looksLikeRepoId(text)) {
    throw new HubError(
      `'${text}': not a Hub ${type} id; expected ORG/NAME or ORG/NAME@REVISION (letters, digits, '-', '_', '.')`,
    );
  }
  const [name, revision] = splitRevision(text);
  return { type, name, revision: revision ?? 'main' };
}

/** `ORG/NAME` or `ORG/NAME@rev` as the user would write it, for messages. */
export function formatRepoRef(ref: RepoRef): string {
  return ref.revision === 'main' ? ref.name : `${ref.name}@${ref.revision}`;
}

export const COMMIT_HASH = /^[0-9a-f]{40}$/;
