// `--data` beyond text files: a local Parquet file, or a Hub dataset id ORG/NAME[@REV] with a
// config, a split and a text column (its Parquet files fetched into the HF cache by @grin-moe/hub
// and streamed a row group at a time). Anything else is a text or JSONL file (text-file.ts).
// Test: cd apps/trainer && npx vitest run src/data/hub-data
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { fetchDatasetParquet, HubError, looksLikeRepoId, readParquetTexts } from '@grin-moe/hub';
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
): Promise<{ docs: TextFileDocument[]; source: string; files: string[] }> {
  try {
    if (isHubDatasetId(data)) {
      const { files, commit } = await fetchDatasetParquet(data, {
        config: options.config,
        split: options.split,
      });
      const source = `${data} (config ${options.config ?? 'default'}, split ${options.split}, column ${options.textColumn}, commit ${commit.slice(0, 12)})`;
      return { docs: await parquetDocuments(files, options.textColumn), source, files };
    }
    if (data.toLowerCase().endsWith('.parquet')) {
      if (!existsSync(data)) throw new DataSourceError(`${data}: no such file`);
      return { docs: await parquetDocuments([data], options.textColumn), source: data, files: [data] };
    }
  } catch (error) {
    if (error instanceof HubError) throw new DataSourceError(error.message);
    throw error;
  }
  return { docs: loadTextFile(data), source: data, files: [data] };
}
