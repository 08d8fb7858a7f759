// fetchDatasetParquet against the loopback Hub's dataset routes: the split's files from the repo,
// the refs/convert/parquet fallback, a second run that downloads nothing, offline, and the error
// listing the folders when the config is wrong. Run: cd packages/hub && npx vitest run test/dataset
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchDatasetParquet } from '../src/dataset-files.js';
import { readParquetTexts } from '../src/parquet.js';
import { silentProgress } from '../src/progress.js';
import { hubSettings } from '../src/settings.js';
import { type FakeHub, startFakeHub } from '../src/testing.js';

const C1 = '1'.repeat(40);
const C2 = '2'.repeat(40);
const parquet = (texts: string[]) =>
  new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: texts, type: 'STRING' }] }));
const trainA = parquet(['one', 'two']);
const trainB = parquet(['three']);
const validation = parquet(['held out']);

let hub: FakeHub;
const home = mkdtempSync(join(tmpdir(), 'grin-hub-ds-'));
const options = (extra: Record<string, string> = {}) => ({
  settings: hubSettings({ HF_HOME: home, HF_ENDPOINT: hub.url, ...extra }),
  progress: silentProgress,
  log: () => {},
});

beforeAll(async () => {
  hub = await startFakeHub([
    {
      type: 'dataset',
      name: 'tiny/stories',
      refs: { main: C1 },
      commits: {
        [C1]: {
          'README.md': new TextEncoder().encode('---\n---\n'),
          'data/train-00000-of-00002.parquet': trainA,
          'data/train-00001-of-00002.parquet': trainB,
          'data/validation-00000-of-00001.parquet': validation,
        },
      },
    },
    {
      type: 'dataset',
      name: 'tiny/jsonl',
      refs: { main: C1, 'refs/convert/parquet': C2 },
      commits: {
        [C1]: { 'train.jsonl': new TextEncoder().encode('{"text":"x"}\n') },
        [C2]: { 'default/train/0000.parquet': trainB },
      },
    },
  ]);
});
afterAll(async () => {
  await hub.close();
  rmSync(home, { recursive: true, force: true });
});

async function texts(files: string[]) {
  const out: string[] = [];
  for (const file of files) for await (const t of readParquetTexts(file, 'text')) out.push(t);
  return out;
}

describe('fetchDatasetParquet', () => {
  it('downloads the split into datasets--ORG--NAME and reads it; a second run downloads nothing', async () => {
    const train = await fetchDatasetParquet('tiny/stories', { config: null, split: 'train' }, options());
    expect(train.files[0]).toBe(
      join(home, 'hub', 'datasets--tiny--stories', 'snapshots', C1, 'data', 'train-00000-of-00002.parquet'),
    );
    expect(await texts(train.files)).toEqual(['one', 'two', 'three']);
    expect(readFileSync(join(home, 'hub', 'datasets--tiny--stories', 'refs', 'main'), 'utf8')).toBe(C1);
    expect(hub.downloads('README.md')).toEqual([]);
    hub.requests.length = 0;
    await fetchDatasetParquet('tiny/stories', { config: null, split: 'train' }, options());
    expect(hub.downloads()).toEqual([]);
    const offline = await fetchDatasetParquet(
      'tiny/stories',
      { config: null, split: 'train' },
      options({ HF_HUB_OFFLINE: '1' }),
    );
    expect(offline.files).toEqual(train.files);
    const val = await fetchDatasetParquet('tiny/stories', { config: null, split: 'validation' }, options());
    expect(await texts(val.files)).toEqual(['held out']);
  });
  it('falls back to the Hub Parquet conversion (refs/convert/parquet)', async () => {
    const got = await fetchDatasetParquet('tiny/jsonl', { config: null, split: 'train' }, options());
    expect(got.commit).toBe(C2);
    expect(await texts(got.files)).toEqual(['three']);
    expect(
      readFileSync(join(home, 'hub', 'datasets--tiny--jsonl', 'refs', 'refs', 'convert', 'parquet'), 'utf8'),
    ).toBe(C2);
  });
  it('names the dataset, config and split when nothing matches, and where the files are', async () => {
    await expect(
      fetchDatasetParquet('tiny/stories', { config: 'en', split: 'train' }, options()),
    ).rejects.toThrow(
      "tiny/stories (config en, split train): no Parquet files for it; the repository's Parquet files are under data",
    );
    await expect(
      fetchDatasetParquet('tiny/absent', { config: null, split: 'train' }, options({ HF_HUB_OFFLINE: '1' })),
    ).rejects.toThrow(/^tiny\/absent: the dataset is not in the cache \(HF_HUB_OFFLINE=1\)/);
  });
});
