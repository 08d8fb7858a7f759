// `grin train --data` beyond text files, against the loopback Hub of @grin-moe/hub/testing: a Hub
// dataset id (config, split, text column) and a local .parquet file train exactly as a JSONL file
// of the same texts does (same loss curve, bit for bit); a second run downloads nothing and reads
// its tokenizer and tokens from the cache in the dataset's HF cache folder; a changed dataset
// misses the cache; the flags map to config fields and are refused without --data.
// Run: cd apps/trainer && npx vitest run src/train/train-data
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeHub, startFakeHub } from '@grin-moe/hub/testing';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../commands/train.js';
import { mergeConfig, type TrainConfig } from './config.js';
import { tinyConfig, writeTinyCorpus } from './fixtures.js';
import { runTraining } from './loop.js';
import { ProgressBar } from './progress.js';

const COMMIT = 'e'.repeat(40);
const COMMIT_2 = 'f'.repeat(40);
const root = mkdtempSync(join(tmpdir(), 'grin-train-data-'));
const saved = { ...process.env };
const texts = readFileSync(writeTinyCorpus(root), 'utf8')
  .trim()
  .split('\n')
  .map((line) => (JSON.parse(line) as { text: string }).text);
const parquet = (column: string, rows: string[]) =>
  new Uint8Array(parquetWriteBuffer({ columnData: [{ name: column, data: rows, type: 'STRING' }] }));
let hub: FakeHub;

beforeAll(async () => {
  hub = await startFakeHub([
    {
      type: 'dataset',
      name: 'tiny/corpus',
      refs: { main: COMMIT, v2: COMMIT_2 },
      commits: {
        [COMMIT]: {
          'en/train-00000-of-00001.parquet': parquet('story', texts),
          'de/train-00000-of-00001.parquet': parquet('story', ['nur ein Satz.']),
        },
        // v2: one document edited, so its tokens differ
        [COMMIT_2]: {
          'en/train-00000-of-00001.parquet': parquet('story', [`${texts[0]} The end.`, ...texts.slice(1)]),
        },
      },
    },
  ]);
  Object.assign(process.env, { HF_ENDPOINT: hub.url, HF_HOME: join(root, 'hf') });
  delete process.env.HF_HUB_OFFLINE;
  delete process.env.HF_TOKEN;
});
afterAll(async () => {
  process.env = saved;
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

/** Trains `data` for 4 steps; returns the metrics (without the timing field) and the log. */
async function train(name: string, data: TrainConfig['data']['file'], patch: object = {}) {
  const lines: string[] = [];
  const progress = new ProgressBar(
    { isTTY: false, write: (text: string) => lines.push(text.trim()) > 0 } as unknown as NodeJS.WriteStream,
    1_000_000,
  );
  const config = mergeConfig(tinyConfig(join(root, 'runs', name), data!, 4), { data: patch }, 'test');
  const summary = await runTraining(config, { resume: false, progress });
  const metrics = readFileSync(join(summary.runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const { tokens_per_s: _timing, ...rest } = JSON.parse(line) as Record<string, number>;
      return rest;
    });
  return { metrics, lines };
}

const tokenCache = () => join(root, 'hf', 'hub', 'datasets--tiny--corpus', 'grin-tokens');

describe('grin train --data with Parquet and Hub datasets', () => {
  it('a Hub dataset and a .parquet file train as a JSONL file of the same texts; the second run reads the cache', async () => {
    const jsonl = join(root, 'plain.jsonl');
    writeFileSync(jsonl, `${texts.map((text) => JSON.stringify({ text })).join('\n')}\n`);
    const reference = await train('jsonl', jsonl);
    expect(reference.metrics).toHaveLength(4);

    const hubPatch = { datasetConfig: 'en', split: 'train', textColumn: 'story' };
    const first = await train('hub-1', 'tiny/corpus', hubPatch);
    expect(first.metrics).toEqual(reference.metrics);
    expect(hub.downloads().map((r) => r.file)).toEqual(['en/train-00000-of-00001.parquet']);
    expect(first.lines).toContainEqual(expect.stringMatching(/^tokenizer: trained a 300-token BPE/));
    expect(first.lines).toContainEqual(expect.stringMatching(/^tokens: tokenized in /));
    // tokenizer + train stream + validation stream
    expect(readdirSync(tokenCache()).sort()).toEqual([
      expect.stringMatching(/^bpe-/),
      expect.stringMatching(/^tokens-.*\.safetensors$/),
      expect.stringMatching(/^tokens-.*\.safetensors$/),
    ]);

    hub.requests.length = 0;
    const second = await train('hub-2', 'tiny/corpus', hubPatch);
    expect(second.metrics).toEqual(reference.metrics);
    expect(hub.downloads()).toEqual([]);
    expect(second.lines).toContainEqual(
      expect.stringMatching(
        new RegExp(`^tokenizer: read the 300-token BPE of the training split from ${tokenCache()}`),
      ),
    );
    expect(second.lines).toContainEqual(
      expect.stringMatching(new RegExp(`^tokens: read from ${tokenCache()} in `)),
    );

    const file = join(root, 'local.parquet');
    writeFileSync(file, parquet('text', texts));
    const local = await train('parquet', file);
    expect(local.metrics).toEqual(reference.metrics);
    expect(existsSync(join(root, '.grin-tokens'))).toBe(true);
  });

  it('a new revision of the dataset misses the cache; a config with too few rows is named', async () => {
    const v2 = await train('hub-v2', 'tiny/corpus@v2', { datasetConfig: 'en', textColumn: 'story' });
    expect(v2.lines).toContainEqual(expect.stringMatching(/^tokenizer: trained a 300-token BPE/));
    expect(v2.lines).toContainEqual(expect.stringMatching(/^tokens: tokenized in /));
    await expect(
      train('hub-de', 'tiny/corpus', { datasetConfig: 'de', textColumn: 'story' }),
    ).rejects.toThrow(
      /^tiny\/corpus \(config de, split train, column story, commit eeeeeeeeeeee\): needs at least 2 documents to split into training and validation, found 1$/,
    );
  });

  it('--data-config, --data-split and --text-column set data fields, and need --data', () => {
    const config = resolveConfig({
      data: 'tiny/corpus',
      'data-config': 'en',
      'data-split': 'validation',
      'text-column': 'story',
    });
    expect(config.data).toMatchObject({
      source: 'file',
      file: 'tiny/corpus',
      datasetConfig: 'en',
      split: 'validation',
      textColumn: 'story',
    });
    expect(() => resolveConfig({ 'data-split': 'validation' })).toThrow(
      'config: data.datasetConfig, data.split and data.textColumn (--data-config, --data-split, --text-column) choose rows of a Parquet file or Hub dataset given with --data; the Brown corpus has none (got {"datasetConfig":null,"split":"validation","textColumn":"text"})',
    );
  });
});
