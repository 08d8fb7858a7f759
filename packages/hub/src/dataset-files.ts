// The Parquet files of one config and split of a Hub dataset, brought into the cache. Chosen the
// way the `datasets` library reads a repository without a loading script: files under a folder
// named after the config (when one is given), whose path names the split as a word
// (`data/train-00000-of-00002.parquet`, `train/0000.parquet`); files that name no split are the
// train split. A repository with no such Parquet files is read from the Hub's own Parquet
// conversion, revision `refs/convert/parquet`, laid out as CONFIG/SPLIT/NNNN.parquet.
// Test: cd packages/hub && npx vitest run test/dataset
import { readdirSync } from 'node:fs';
import { HubError } from './errors.js';
import { formatRepoRef, parseRepoRef, type RepoRef } from './repo-id.js';
import { type HubOptions, openSnapshot } from './snapshot.js';

export interface DatasetSelection {
  /** A config (subset) name; null for the repository's default files. */
  config: string | null;
  split: string;
}

const SPLIT_NAMES = ['train', 'validation', 'valid', 'val', 'dev', 'test', 'eval'];
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const namesSplit = (path: string, split: string) =>
  new RegExp(`(^|[/_.-])${escapeRegExp(split)}([/_.-]|$)`, 'i').test(path.replace(/\.parquet$/, ''));

/** The Parquet files of `files` that hold the selection, in order; [] when none do. */
export function selectParquetFiles(files: readonly string[], { config, split }: DatasetSelection): string[] {
  let parquet = files.filter((f) => f.endsWith('.parquet'));
  if (config && config !== 'default')
    parquet = parquet.filter((f) => f.split('/').slice(0, -1).includes(config));
  const named = parquet.filter((f) => namesSplit(f, split));
  if (named.length) return named.sort();
  if (split !== 'train') return [];
  return parquet.filter((f) => !SPLIT_NAMES.some((s) => namesSplit(f, s))).sort();
}

export interface FetchedDataset {
  ref: RepoRef;
  commit: string;
  /** Local paths of the Parquet files, in order. */
  files: string[];
}

export async function fetchDatasetParquet(
  id: string | RepoRef,
  selection: DatasetSelection,
  options: HubOptions = {},
): Promise<FetchedDataset> {
  const ref = typeof id === 'string' ? parseRepoRef(id, 'dataset') : id;
  const what = `${formatRepoRef(ref)} (config ${selection.config ?? 'default'}, split ${selection.split})`;
  const snapshot = await openSnapshot(ref, options);
  if (!snapshot.files) {
    // Offline: the cached snapshot's own files are all there is to choose from.
    const local = readdirSync(snapshot.dir, { recursive: true, encoding: 'utf8' });
    const chosen = selectParquetFiles(local, selection);
    if (!chosen.length)
      throw new HubError(`${what}: no Parquet files for it in the cached snapshot ${snapshot.dir}`);
    return { ref, commit: snapshot.commit, files: await snapshot.fetch(chosen) };
  }
  const chosen = selectParquetFiles(snapshot.files, selection);
  if (chosen.length) return { ref, commit: snapshot.commit, files: await snapshot.fetch(chosen) };
  if (ref.revision === 'main') {
    const converted = await openSnapshot({ ...ref, revision: 'refs/convert/parquet' }, options).catch(
      () => null,
    );
    const prefix = `${selection.config ?? 'default'}/${selection.split}/`;
    const files = (converted?.files ?? [])
      .filter((f) => f.startsWith(prefix) && f.endsWith('.parquet'))
      .sort();
    if (converted && files.length)
      return { ref, commit: converted.commit, files: await converted.fetch(files) };
  }
  const parquet = snapshot.files.filter((f) => f.endsWith('.parquet'));
  const folders = [...new Set(parquet.map((f) => f.split('/')[0]!).filter((f) => !f.endsWith('.parquet')))];
  throw new HubError(
    `${what}: no Parquet files for it` +
      (parquet.length
        ? `; the repository's Parquet files are under ${folders.join(', ') || 'its root'} (try --data-config with one of those, or another --data-split)`
        : '; the repository has no Parquet files and no Parquet conversion (refs/convert/parquet)'),
  );
}
