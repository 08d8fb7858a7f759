// loadTokenizer on model directories: special ids from tokenizer_config.json (names or AddedToken
// objects), padding from config.json's vocab_size, stop ids from its eos_token_id, clear errors.
// Run: cd packages/model-grin && npx vitest run src/tokenizer/hf-tokenizer.test.ts

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { trainBpeJson } from './bpe-trainer.js';
import { HfTokenizer, loadTokenizer } from './hf-tokenizer.js';

const root = mkdtempSync(join(tmpdir(), 'hf-tokenizer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const json = trainBpeJson(['hello world, hello tokenizer', 'the world is round'], {
  vocabSize: 300,
  minFrequency: 1,
});

function modelDir(name: string, files: Record<string, unknown>): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    writeFileSync(join(dir, file), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

describe('loadTokenizer', () => {
  it('reads tokenizer.json alone, finding specials by their usual names', () => {
    const tokenizer = loadTokenizer(modelDir('plain', { 'tokenizer.json': json }));
    expect(tokenizer.specialIds).toEqual({ bos: 1, eos: 2, pad: 3, unk: 0 });
    expect(tokenizer.stopIds).toEqual([2]);
    expect(tokenizer.decode(tokenizer.encode('hello world'))).toBe('hello world');
  });

  it('takes special token names (or AddedToken objects) from tokenizer_config.json', () => {
    const tokenizer = loadTokenizer(
      modelDir('config', {
        'tokenizer.json': json,
        'tokenizer_config.json': { bos_token: { content: '<s>' }, eos_token: '<pad>', pad_token: null },
      }),
    );
    expect(tokenizer.specialIds).toEqual({ bos: 1, eos: 3, pad: undefined, unk: 0 });
  });

  it('pads vocabSize to config.json vocab_size and adds its eos_token_id list to stopIds', () => {
    const tokenizer = loadTokenizer(
      modelDir('padded', {
        'tokenizer.json': json,
        'config.json': { vocab_size: 320, eos_token_id: [2, 3] },
      }),
    );
    expect(tokenizer.vocabSize).toBe(320);
    expect(tokenizer.stopIds).toEqual([2, 3]);
    expect(tokenizer.idToToken(310)).toBeUndefined();
    expect(tokenizer.decode([310])).toBe('');
  });

  it('names the missing or broken file', () => {
    const empty = modelDir('empty', {});
    expect(() => loadTokenizer(empty)).toThrow(`${join(empty, 'tokenizer.json')} not found`);
    const broken = modelDir('broken', { 'tokenizer.json': '{"model": ' });
    expect(() => loadTokenizer(broken)).toThrow(`${join(broken, 'tokenizer.json')}: not valid JSON`);
    const unigram = modelDir('unigram', { 'tokenizer.json': { ...json, model: { type: 'Unigram' } } });
    expect(() => loadTokenizer(unigram)).toThrow('model.type is "Unigram"; only "BPE" is supported');
  });

  it('rejects a vocabSize below the largest id', () => {
    expect(() => new HfTokenizer(json, { vocabSize: 10 })).toThrow(
      'vocab_size (10) is smaller than the largest token id + 1 (300)',
    );
  });
});
