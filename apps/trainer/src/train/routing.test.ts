// The routing report's choices: windows of every category, each inside one category's run of
// tokens and at most `limit` per category; the token-routing text cut after its last real sentence
// (not after an initial or a title). Run: cd apps/trainer && npx vitest run src/train/routing
import type { Tokenizer } from '@grin-moe/model-grin';
import { describe, expect, it } from 'vitest';
import type { TokenStream } from './dataset.js';
import { sampleSentences, windowsByCategory } from './routing.js';

function stream(runs: Array<[category: number, length: number]>, categories: string[]): TokenStream {
  const categoryOf = Uint8Array.from(runs.flatMap(([c, n]) => new Array<number>(n).fill(c)));
  return { tokens: Int32Array.from(categoryOf, (_, i) => i), categoryOf, categories };
}

/** A character-level stand-in: token i is the character with code i. */
const chars = { decode: (ids: readonly number[]) => String.fromCharCode(...ids) } as unknown as Tokenizer;
const ofText = (text: string): TokenStream => ({
  tokens: Int32Array.from(text, (c) => c.charCodeAt(0)),
  categoryOf: new Uint8Array(text.length),
  categories: ['text'],
});

describe('routing report', () => {
  it('takes windows of every category, never across two, at most limit each', () => {
    const s = stream(
      [
        [0, 10],
        [1, 3],
        [0, 6],
        [2, 9],
      ],
      ['a', 'b', 'c'],
    );
    const windows = windowsByCategory(s, 4, 2);
    expect(windows).toEqual([
      [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
      ],
      [],
      [
        [19, 20, 21, 22],
        [23, 24, 25, 26],
      ],
    ]);
    // without a limit, the second run of 'a' (13..18) gives one more window
    expect(windowsByCategory(s, 4, 9)[0]).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [13, 14, 15, 16],
    ]);
  });

  it('cuts the token-routing text after its last sentence, not after an initial', () => {
    expect(sampleSentences(chars, ofText('The cat sat.  The dog\nran home. And then'), 99)).toBe(
      'The cat sat. The dog ran home.',
    );
    const news = 'Sen. Walter H. Jones spoke of a remark by Richard J. Hughes';
    expect(sampleSentences(chars, ofText(news), 99)).toBe(news);
    expect(sampleSentences(chars, ofText('a long sentence here. more'), 10)).toBe('a long sen');
  });
});
