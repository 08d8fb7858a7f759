// `--data` beyond text files: a local Parquet file, or a Hub dataset id ORG/NAME[@REV] with a
// config, a split and a text column (its Parquet files fetched into the HF cache by @grin-moe/hub
// and streamed a row group at a time). Anything else is a text or JSONL file (text-file.ts).
// Each source names the folder its token cache goes in (token-cache.ts): a Hub dataset's folder
// in the HF cache (DATASET/grin-tokens, beside refs/ and snapshots/), or .grin-tokens beside a file.
// Test: cd apps/trainer && npx vitest run src/data/hub-data
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  fetchDatasetParquet,
  HubError,
  hubSettings,
  looksLikeRepoId,
  parseRepoRef,
  readParquetTexts,
  repoCache,
} from '@grin-moe/hub';
import { loadTextFile, type TextFileDocument } from './text-file.js';

export interface DataOptions {
  /** The dataset config (subset); null: the repository's default files. */
  config: string | null;
  split: string;
  textColumn: string;
}

export const defaultDataOptions: DataOptions = { config: null, split: 'train', textColumn: 'text' };

export class DataSourceError extends Error {}

export function isHubDatasetId(data: string): boolean {
  return !existsSync(data) && looksLikeRepoId(data);
}

/** One document a row; ids are FILE#ROW (1-based, null rows skipped), as text-file.ts names them. */
async function parquetDocuments(files: readonly string[], column: string): Promise<TextFileDocument[]> {
  const docs: TextFileDocument[] = [];
  for (const file of files) {
    let row = 0;
    const stem = basename(file, '.parquet');
    for await (const text of readParquetTexts(file, column)) docs.push({ id: `${stem}#${++row}`, text });
  }
  return docs;
}

/** The documents of --data: a Hub dataset id, a .parquet file, or a text / JSONL file. */
export async function loadDataDocuments(
  data: string,
  options: DataOptions = defaultDataOptions,
): Promise<{ docs: TextFileDocument[]; source: string; files: string[]; cacheDir: string }> {
  try {
    if (isHubDatasetId(data)) {
      const { files, commit } = await fetchDatasetParquet(data, {
        config: options.config,
        split: options.split,
      });
      const source = `${data} (config ${options.config ?? 'default'}, split ${options.split}, column ${options.textColumn}, commit ${commit.slice(0, 12)})`;
      const folder = repoCache(hubSettings().cacheDir, parseRepoRef(data, 'dataset')).folder;
      const docs = await parquetDocuments(files, options.textColumn);
      return { docs, source, files, cacheDir: join(folder, 'grin-tokens') };
    }
    if (data.toLowerCase().endsWith('.parquet')) {
      if (!existsSync(data)) throw new DataSourceError(`${data}: no such file`);
      const docs = await parquetDocuments([data], options.textColumn);
      return { docs, source: data, files: [data], cacheDir: beside(data) };
    }
  } catch (error) {
    if (error instanceof HubError) throw new DataSourceError(error.message);
    throw error;
  }
  return { docs: loadTextFile(data), source: data, files: [data], cacheDir: beside(data) };
}

const beside = (file: string) => join(dirname(file), '.grin-tokens');

/**
 * Fetches a Hub dataset's Parquet files into the HF cache once, before `--dp N` starts its ranks,
 * so that N processes do not download the same files side by side. Anything else: nothing to do.
 */
export async function prefetchData(data: string | null, options: DataOptions): Promise<void> {
  if (!data || !isHubDatasetId(data)) return;
  try {
    await fetchDatasetParquet(data, { config: options.config, split: options.split });
  } catch (error) {
    if (error instanceof HubError) throw new DataSourceError(error.message);
    throw error;
  }
}
