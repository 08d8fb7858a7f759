// Texts from Parquet files written by hyparquet-writer: several row groups, snappy and
// uncompressed, nulls skipped, and the errors for a missing column, a non-string column and a file
// that is not Parquet. Run: cd packages/hub && npx vitest run src/parquet
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, describe, expect, it } from 'vitest';
import { parquetColumns, readParquetTexts } from './parquet.js';

const dir = mkdtempSync(join(tmpdir(), 'grin-parquet-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const texts = Array.from({ length: 25 }, (_, i) => (i === 7 ? null : `document ${i} ${'é'.repeat(i % 3)}`));
function write(name: string, options: { codec?: 'SNAPPY' | 'UNCOMPRESSED'; rowGroupSize?: number } = {}) {
  const path = join(dir, name);
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'id', data: texts.map((_, i) => i), type: 'INT32' },
      { name: 'text', data: texts, type: 'STRING' },
    ],
    ...options,
  });
  writeFileSync(path, new Uint8Array(buffer));
  return path;
}
const collect = async (it: AsyncIterable<string>) => {
  const out: string[] = [];
  for await (const t of it) out.push(t);
  return out;
};

describe('readParquetTexts', () => {
  it.each([
    ['snappy, 4 row groups', { codec: 'SNAPPY' as const, rowGroupSize: 7 }],
    ['uncompressed, 1 row group', { codec: 'UNCOMPRESSED' as const }],
  ])('reads every non-null text in order (%s)', async (_, options) => {
    const path = write(`t-${options.codec}.parquet`, options);
    expect(await parquetColumns(path)).toEqual(['id', 'text']);
    expect(await collect(readParquetTexts(path, 'text'))).toEqual(texts.filter((t) => t !== null));
  });
  it('names the file, column and row on bad input', async () => {
    const path = write('bad.parquet');
    await expect(collect(readParquetTexts(path, 'content'))).rejects.toThrow(
      `${path}: no column 'content'; its columns are id, text (choose one with --text-column)`,
    );
    await expect(collect(readParquetTexts(path, 'id'))).rejects.toThrow(
      `${path}: row 0, column 'id': expected a string, got number`,
    );
    const notParquet = join(dir, 'x.parquet');
    writeFileSync(notParquet, 'hello, this is text');
    await expect(collect(readParquetTexts(notParquet, 'text'))).rejects.toThrow(
      `${notParquet}: not a readable Parquet file`,
    );
  });
});
