// The Brown corpus loader: 500 texts, 15 genres with the right letters (checked against the
// package's cats.txt), 1,161,192 tagged tokens, no tags left in the text, readable spacing, and a
// deterministic, disjoint, genre-stratified split. Run: cd apps/trainer && npx vitest run src/data/brown.test.ts

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BROWN_GENRES,
  type BrownCorpus,
  brownDirectory,
  brownFileToText,
  detokenize,
  loadBrown,
  splitByText,
} from './brown.js';

let brown: BrownCorpus;
beforeAll(() => {
  brown = loadBrown();
});

// Frequent Brown tags, with the -tl / -hl / -nc suffixes and the $ of possessives.
const TAG =
  /\S\/(?:at|nn|nns|np|nps|vb|vbd|vbn|vbg|vbz|in|jj|cc|cs|rb|dt|pps|ppss|ppo|to|md|be|bez|bedz|cd|wdt|ex|``|'')(?:\$|-tl|-hl|-nc)*(?=\s|$)/;

describe('loadBrown', () => {
  it('has 500 texts in 15 genres and about 1.16M tokens', () => {
    expect(brown.texts).toHaveLength(500);
    expect(new Set(brown.texts.map((text) => text.genreName)).size).toBe(15);
    expect(brown.tokenCount).toBe(1_161_192);
    const words = brown.texts.reduce((sum, text) => sum + text.text.split(/\s+/).filter(Boolean).length, 0);
    expect(words).toBeGreaterThan(950_000); // punctuation now sits on its word
    expect(words).toBeLessThan(1_100_000);
  });

  it('maps the category letters A..R to the genre names of cats.txt', () => {
    const cats = readFileSync(join(brownDirectory(), 'cats.txt'), 'utf8').trim().split('\n');
    expect(cats).toHaveLength(500);
    const byId = new Map(brown.texts.map((text) => [text.id, text]));
    for (const line of cats) {
      const [id, name] = line.split(' ');
      expect(byId.get(id!)?.genreName).toBe(name);
    }
    expect(Object.keys(BROWN_GENRES).join('')).toBe('ABCDEFGHJKLMNPR');
    const counts = Object.fromEntries(Object.values(BROWN_GENRES).map((name) => [name, 0]));
    for (const text of brown.texts) counts[text.genreName]!++;
    expect(counts).toMatchObject({ news: 44, learned: 80, belles_lettres: 75, humor: 9, science_fiction: 6 });
  });

  it('leaves no part-of-speech tags in the text', () => {
    for (const text of brown.texts) {
      expect(text.text, text.id).not.toMatch(TAG);
      expect(text.text, text.id).not.toContain('``');
      expect(text.text, text.id).not.toMatch(/(?<!\d)''/); // 10'' (inches) is a word
      // Every slash left is one inside a word ('and/or', '1-1/2', '/l/'), none from a tag.
      const tokens = readFileSync(join(brownDirectory(), text.id), 'utf8').split(/\s+/).filter(Boolean);
      const wordSlashes = tokens.reduce(
        (sum, token) => sum + token.slice(0, token.lastIndexOf('/')).split('/').length - 1,
        0,
      );
      expect(text.text.split('/').length - 1, text.id).toBe(wordSlashes);
    }
  });

  it('reconstructs readable text, one paragraph a line', () => {
    const first = brown.texts[0]!;
    expect(first).toMatchObject({ id: 'ca01', genre: 'A', genreName: 'news' });
    expect(first.text.split('\n')[0]).toBe(
      'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.',
    );
    expect(first.text).toContain('\nMerger proposed\n'); // a headline stands alone
    expect(first.text.endsWith('\n')).toBe(true);
    // Punctuation hugs the word before it; the one exception is a word of its own (':35.3').
    const all = brown.texts.map((text) => text.text).join('');
    expect(all.match(/ [,.;:?!)]/g)).toEqual([' :']);
  });

  it('groups continuation lines into their paragraph', () => {
    const source = '\tIt/pps was/bedz ./.\nSo/rb it/pps is/bez ./.\n\n\n\tNext/ap ./.\n';
    expect(brownFileToText(source)).toEqual({ text: 'It was. So it is.\nNext.\n', tokenCount: 9 });
  });

  it('spaces punctuation and quotes like print', () => {
    expect(detokenize(['``', 'Hi', "''", ',', 'he', 'said', '(', 'twice', ')', '.'])).toBe(
      '"Hi", he said (twice).',
    );
    expect(detokenize(['a', "'", 'pro', "'", 'letter', '--', 'yes', ';', 'no', '!'])).toBe(
      "a 'pro' letter--yes; no!",
    );
  });
});

describe('splitByText', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = splitByText(brown.texts, { validationFraction: 0.1, seed: 1 });
    const b = splitByText(brown.texts, { validationFraction: 0.1, seed: 1 });
    const c = splitByText(brown.texts, { validationFraction: 0.1, seed: 2 });
    expect(b.validation.map((text) => text.id)).toEqual(a.validation.map((text) => text.id));
    expect(c.validation.map((text) => text.id)).not.toEqual(a.validation.map((text) => text.id));
  });

  it('splits whole texts disjointly, covering every genre in validation', () => {
    const { train, validation } = splitByText(brown.texts, { validationFraction: 0.1, seed: 7 });
    const trainIds = new Set(train.map((text) => text.id));
    expect(validation.some((text) => trainIds.has(text.id))).toBe(false);
    expect(train.length + validation.length).toBe(500);
    expect(validation.length).toBeGreaterThanOrEqual(48);
    expect(validation.length).toBeLessThanOrEqual(55);
    expect(new Set(validation.map((text) => text.genre)).size).toBe(15);
    expect(new Set(train.map((text) => text.genre)).size).toBe(15);
  });

  it('keeps a one-text genre in train and rejects a bad fraction', () => {
    const texts = [
      { id: 'a', text: 'x', genre: 'solo' },
      { id: 'b', text: 'y', genre: 'pair' },
      { id: 'c', text: 'z', genre: 'pair' },
    ];
    const { train, validation } = splitByText(texts, { validationFraction: 0.1 });
    expect(train.map((text) => text.id)).toContain('a');
    expect(validation).toHaveLength(1);
    expect(validation[0]!.genre).toBe('pair');
    expect(splitByText(texts, { validationFraction: 0 }).validation).toEqual([]);
    expect(() => splitByText(texts, { validationFraction: 1 })).toThrow(
      'validationFraction (1) must be in [0, 1)',
    );
  });
});
