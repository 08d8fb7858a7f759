// The BPE trainer: merge order on a hand-checked corpus, determinism, round trips with byte
// fallback, save -> loadTokenizer, and a speed check on a synthetic corpus of Zipf-like words.
// Run: cd packages/model-grin && npx vitest run src/tokenizer/bpe-trainer.test.ts

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { trainBpe, trainBpeJson } from './bpe-trainer.js';
import { loadTokenizer } from './hf-tokenizer.js';

// Sennrich et al.'s example: low x5, lower x2, newest x6, widest x3.
const TOY = [
  'low low low low low lower lower',
  'newest newest newest newest newest newest widest widest widest',
];

const CORPUS = [
  'The jury said it did find that many of Georgia\'s registration and election laws "are outmoded".',
  'It recommended that Fulton legislators act "to have these laws studied and revised".',
  'Ça coûte cher, naïve café; the résumé was 5 pages long.',
  'Numbers like 1,234.56 and 2024-06-01 appear in text too.\nNew lines\tand tabs.',
];

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Deterministic Zipf-like words over a 26-letter alphabet (no Math.random). */
function syntheticCorpus(wordCount: number): string[] {
  let state = 12345;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const lexicon = Array.from({ length: 20000 }, (_, i) => {
    let word = '';
    for (let n = 2 + (i % 9); n > 0; n--) word += String.fromCharCode(97 + Math.floor(next() * 26));
    return word;
  });
  const lines: string[] = [];
  let line: string[] = [];
  for (let i = 0; i < wordCount; i++) {
    line.push(lexicon[Math.floor(lexicon.length * next() ** 3)]!);
    if (line.length === 20) {
      lines.push(line.join(' '));
      line = [];
    }
  }
  return lines;
}

describe('trainBpe', () => {
  it('learns merges most frequent first (ties: smaller ids), on a hand-checked corpus', () => {
    const json = trainBpeJson(TOY, { vocabSize: 260 + 11 + 6, minFrequency: 1 });
    // Character ids by frequency: e(17) w(16) ▁(16) s(9) t(9) l(7) o(7) n(6) d(3) i(3) r(2).
    expect(Object.keys(json.model.vocab).slice(260)).toEqual([
      ...'ew▁stlondir',
      'es',
      'est',
      '▁l',
      'ow',
      '▁low',
      'ew',
    ]);
    // es and st both occur 9 times; (e, s) has the smaller ids. Then ▁ l, o w, ▁l ow (7 each).
    expect(json.model.merges).toEqual(['e s', 'es t', '▁ l', 'o w', '▁l ow', 'e w']);
  });

  it('puts the special tokens at 0..3 and byte pieces after them', () => {
    const tokenizer = trainBpe(CORPUS, { vocabSize: 400, minFrequency: 1 });
    expect([0, 1, 2, 3].map((id) => tokenizer.idToToken(id))).toEqual(['<unk>', '<s>', '</s>', '<pad>']);
    expect(tokenizer.specialIds).toEqual({ bos: 1, eos: 2, pad: 3, unk: 0 });
    expect(tokenizer.idToToken(4)).toBe('<0x00>');
    expect(tokenizer.idToToken(259)).toBe('<0xFF>');
    expect(tokenizer.vocabSize).toBe(400);
    expect(tokenizer.encode('the jury', { addBos: true })[0]).toBe(1);
  });

  it('is deterministic', () => {
    const a = trainBpeJson(CORPUS, { vocabSize: 500, minFrequency: 1 });
    const b = trainBpeJson([...CORPUS], { vocabSize: 500, minFrequency: 1 });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('stops at minFrequency', () => {
    const json = trainBpeJson(TOY, { vocabSize: 4096, minFrequency: 7 });
    expect(json.model.merges).toEqual(['e s', 'es t', '▁ l', 'o w', '▁l ow']);
  });

  it.each([
    ...CORPUS,
    'unseen characters: 日本語, emoji 🦙🤗, Ꙋ and ß',
    '  leading spaces and trailing  ',
    'a\n\nb',
  ])('round-trips %j', (text) => {
    const tokenizer = trainBpe(CORPUS, { vocabSize: 600 });
    expect(tokenizer.decode(tokenizer.encode(text, { addBos: true }), { skipSpecial: true })).toBe(text);
  });

  it('falls back to UTF-8 byte pieces for characters it never saw', () => {
    const tokenizer = trainBpe(CORPUS, { vocabSize: 600 });
    const ids = tokenizer.encode('🦙');
    expect(ids.map((id) => tokenizer.idToToken(id))).toEqual(['▁', '<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']);
  });

  it('saves a tokenizer.json that loadTokenizer reads back with identical encodings', () => {
    const tokenizer = trainBpe(CORPUS, { vocabSize: 600 });
    const dir = mkdtempSync(join(tmpdir(), 'bpe-'));
    dirs.push(dir);
    tokenizer.save(dir);
    const saved = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    expect(saved.model).toMatchObject({ type: 'BPE', byte_fallback: true });
    const loaded = loadTokenizer(dir);
    expect(loaded.vocabSize).toBe(tokenizer.vocabSize);
    expect(loaded.specialIds).toEqual(tokenizer.specialIds);
    for (const text of [...CORPUS, 'Ꙋ🦙 new words: zyxwv']) {
      expect(loaded.encode(text, { addBos: true })).toEqual(tokenizer.encode(text, { addBos: true }));
    }
  });

  it('never merges across a word boundary (a token holds ▁ only at its start)', () => {
    const tokenizer = trainBpe(CORPUS, { vocabSize: 600, minFrequency: 1 });
    const ids = tokenizer.encode(CORPUS.join(' '));
    const pieces = ids.map((id) => tokenizer.idToToken(id)!);
    expect(pieces.filter((piece) => piece.lastIndexOf('▁') > 0)).toEqual([]);
    expect(pieces.length).toBeLessThan(CORPUS.join(' ').length / 2);
  });

  it('trains on 300k words in a few seconds', () => {
    const texts = syntheticCorpus(300_000);
    const start = performance.now();
    const tokenizer = trainBpe(texts, { vocabSize: 4096 });
    const seconds = (performance.now() - start) / 1000;
    expect(tokenizer.vocabSize).toBe(4096);
    expect(seconds).toBeLessThan(20);
  });
});
