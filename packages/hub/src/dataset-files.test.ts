// Which Parquet files of a dataset repository hold a config and split, on layouts found on the
// Hub: data/SPLIT-NNNNN-of-NNNNN.parquet, CONFIG/SPLIT-*.parquet, CONFIG/SPLIT/NNNN.parquet (the
// refs/convert/parquet branch), and files that name no split (the train split).
// Run: cd packages/hub && npx vitest run src/dataset-files
import { describe, expect, it } from 'vitest';
import { selectParquetFiles } from './dataset-files.js';

describe('selectParquetFiles', () => {
  const tinyStories = [
    'README.md',
    'data/train-00001-of-00002.parquet',
    'data/train-00000-of-00002.parquet',
    'data/validation-00000-of-00001.parquet',
  ];
  const wikitext = [
    'wikitext-2-raw-v1/test-00000-of-00001.parquet',
    'wikitext-2-raw-v1/train-00000-of-00001.parquet',
    'wikitext-103-raw-v1/train-00000-of-00002.parquet',
  ];
  it('picks the split by name, sorted, without other splits', () => {
    expect(selectParquetFiles(tinyStories, { config: null, split: 'train' })).toEqual([
      'data/train-00000-of-00002.parquet',
      'data/train-00001-of-00002.parquet',
    ]);
    expect(selectParquetFiles(tinyStories, { config: null, split: 'validation' })).toEqual([
      'data/validation-00000-of-00001.parquet',
    ]);
    expect(selectParquetFiles(tinyStories, { config: null, split: 'test' })).toEqual([]);
  });
  it('restricts to the config folder', () => {
    expect(selectParquetFiles(wikitext, { config: 'wikitext-2-raw-v1', split: 'train' })).toEqual([
      'wikitext-2-raw-v1/train-00000-of-00001.parquet',
    ]);
    expect(selectParquetFiles(wikitext, { config: 'nope', split: 'train' })).toEqual([]);
  });
  it('reads the converted layout and takes files naming no split as train', () => {
    const converted = [
      'default/train/0000.parquet',
      'default/train/0001.parquet',
      'default/test/0000.parquet',
    ];
    expect(selectParquetFiles(converted, { config: 'default', split: 'train' })).toHaveLength(2);
    const fineweb = ['sample/10BT/000_00000.parquet', 'sample/10BT/001_00000.parquet', 'README.md'];
    expect(selectParquetFiles(fineweb, { config: null, split: 'train' })).toEqual(fineweb.slice(0, 2));
    expect(selectParquetFiles(fineweb, { config: null, split: 'test' })).toEqual([]);
    // 'trainer' is not the word 'train'
    expect(selectParquetFiles(['trainer_logs.parquet'], { config: null, split: 'valid' })).toEqual([]);
  });
});
