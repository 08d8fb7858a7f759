// --data as a Parquet file and as a Hub dataset id (loopback Hub, HF_ENDPOINT), with config,
// split and text column; the errors name the dataset or file; prefetchData fills the cache once. Run: cd apps/trainer && npx vitest run src/data/hub-data
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeHub, startFakeHub } from '@grin-moe/hub/testing';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataDocuments, prefetchData } from './hub-data.js';

const COMMIT = 'd'.repeat(40);
const parquet = (column: string, texts: string[]) =>
  new Uint8Array(parquetWriteBuffer({ columnData: [{ name: column, data: texts, type: 'STRING' }] }));
const root = mkdtempSync(join(tmpdir(), 'grin-hub-data-'));
const saved = { ...process.env };
let hub: FakeHub;

beforeAll(async () => {
  hub = await startFakeHub([
    {
      type: 'dataset',
      name: 'tiny/stories',
      refs: { main: COMMIT },
      commits: {
        [COMMIT]: {
          'en/train-00000-of-00001.parquet': parquet('story', ['Once upon a time.', 'The end.']),
          'en/validation-00000-of-00001.parquet': parquet('story', ['Held out.']),
          'fr/train-00000-of-00001.parquet': parquet('story', ['Il était une fois.']),
        },
      },
    },
  ]);
  Object.assign(process.env, { HF_ENDPOINT: hub.url, HF_HOME: join(root, 'hf') });
  delete process.env.HF_HUB_OFFLINE;
});
afterAll(async () => {
  process.env = saved;
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

describe('loadDataDocuments', () => {
  it('reads a Hub dataset by config, split and column', async () => {
    const fr = await loadDataDocuments('tiny/stories', { config: 'fr', split: 'train', textColumn: 'story' });
    expect(fr.docs).toEqual([{ id: 'train-00000-of-00001#1', text: 'Il était une fois.' }]);
    expect(fr.source).toMatch(
      /^tiny\/stories \(config fr, split train, column story, commit dddddddddddd\)$/,
    );
    const val = await loadDataDocuments('tiny/stories', {
      config: 'en',
      split: 'validation',
      textColumn: 'story',
    });
    expect(val.docs.map((d) => d.text)).toEqual(['Held out.']);
  });
  it('reads a local Parquet file and still reads text files', async () => {
    const file = join(root, 'local.parquet');
    writeFileSync(file, parquet('text', ['a b c', 'd e f']));
    expect((await loadDataDocuments(file)).docs.map((d) => d.text)).toEqual(['a b c', 'd e f']);
    const text = join(root, 'corpus.txt');
    writeFileSync(text, 'one\n\ntwo\n');
    expect((await loadDataDocuments(text)).docs.map((d) => d.text)).toEqual(['one', 'two']);
  });
  it('names the dataset, the file and the column on bad input', async () => {
    await expect(
      loadDataDocuments('tiny/stories', { config: 'de', split: 'train', textColumn: 'story' }),
    ).rejects.toThrow(
      "tiny/stories (config de, split train): no Parquet files for it; the repository's Parquet files are under en, fr",
    );
    await expect(
      loadDataDocuments('tiny/stories', { config: 'en', split: 'train', textColumn: 'text' }),
    ).rejects.toThrow(/train-00000-of-00001\.parquet: no column 'text'; its columns are story/);
    await expect(loadDataDocuments(join(root, 'missing.parquet'))).rejects.toThrow(
      /missing\.parquet: no such file/,
    );
  });
  it('prefetchData fetches a Hub dataset once (before --dp ranks start); the load then downloads nothing', async () => {
    hub.requests.length = 0;
    const options = { config: 'fr', split: 'train', textColumn: 'story' };
    await prefetchData('tiny/stories', options);
    expect(hub.downloads().map((r) => r.file)).toEqual([]); // fetched by the first test already
    process.env.HF_HOME = join(root, 'hf-fresh');
    try {
      await prefetchData('tiny/stories', options);
      expect(hub.downloads().map((r) => r.file)).toEqual(['fr/train-00000-of-00001.parquet']);
      hub.requests.length = 0;
      expect((await loadDataDocuments('tiny/stories', options)).docs.map((d) => d.text)).toEqual([
        'Il était une fois.',
      ]);
      expect(hub.downloads()).toEqual([]);
      // a text file or no --data: nothing to fetch
      hub.requests.length = 0;
      await prefetchData(join(root, 'corpus.txt'), options);
      await prefetchData(null, options);
      expect(hub.requests).toEqual([]);
      await expect(prefetchData('tiny/absent', options)).rejects.toThrow(/tiny\/absent/);
    } finally {
      process.env.HF_HOME = join(root, 'hf');
    }
  });
});
