// Texts from one string column of a Parquet file, read one row group at a time with hyparquet
// (pure JavaScript; snappy built in, zstd / gzip / brotli / lz4 from hyparquet-compressors), so
// a file larger than memory streams. Errors name the file, the column and the row.
// Test: cd packages/hub && npx vitest run src/parquet
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { HubError } from './errors.js';

export async function parquetColumns(path: string): Promise<string[]> {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  return parquetSchema(metadata).children.map((c) => c.element.name);
}

/** Yields the column's values row by row; null values are skipped, anything but a string is refused. */
export async function* readParquetTexts(path: string, column: string): AsyncGenerator<string> {
  const file = await asyncBufferFromFile(path);
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw new HubError(`${path}: not a readable Parquet file (${(error as Error).message})`);
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  if (!columns.includes(column))
    throw new HubError(
      `${path}: no column '${column}'; its columns are ${columns.join(', ')} (choose one with --text-column)`,
    );
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    const rows = await parquetReadObjects({
      file,
      metadata,
      columns: [column],
      rowStart,
      rowEnd,
      compressors,
    });
    for (let i = 0; i < rows.length; i++) {
      const value = rows[i]![column];
      if (value === null || value === undefined) continue;
      if (typeof value !== 'string')
        throw new HubError(
          `${path}: row ${rowStart + i}, column '${column}': expected a string, got ${typeof value}`,
        );
      yield value;
    }
    rowStart = rowEnd;
  }
}
