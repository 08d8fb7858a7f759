// createStreamDecoder: pushing ids one at a time yields exactly decode(all ids), never half a
// UTF-8 character, and keeps the spaces carried by '▁' across window trims.
// Run: cd packages/model-grin && npx vitest run src/tokenizer/stream-decoder.test.ts

import { beforeAll, describe, expect, it } from 'vitest';
import type { HfTokenizer } from './hf-tokenizer.js';
import { phi3Tokenizer } from './phi3.js';
import { createStreamDecoder } from './stream-decoder.js';

let tokenizer: HfTokenizer;
beforeAll(async () => {
  tokenizer = await phi3Tokenizer();
});

function stream(ids: number[], windowSize?: number): string[] {
  const decoder = createStreamDecoder(tokenizer, { windowSize });
  const pieces = ids.map((id) => decoder.push(id));
  pieces.push(decoder.flush());
  return pieces;
}

describe('createStreamDecoder', () => {
  it.each([
    'Hello world, how are you?',
    'Emoji 🦙 and Ꙋ in a sentence, 日本語 too.',
    'Ça coûte 5 € — naïve café.\nSecond line\twith tab.',
    'many  spaces   here',
  ])('streams %j to the same text as decode', (text) => {
    const ids = tokenizer.encode(text);
    for (const windowSize of [8, 64]) {
      const pieces = stream(ids, windowSize);
      expect(pieces.join('')).toBe(tokenizer.decode(ids, { skipSpecial: true }));
      expect(pieces.some((piece) => piece.includes('\uFFFD'))).toBe(false);
    }
  });

  it('holds byte-fallback pieces until the character is whole', () => {
    const ids = tokenizer.encode('a🦙b');
    expect(ids.map((id) => tokenizer.idToToken(id))).toEqual([
      '▁a',
      '<0xF0>',
      '<0x9F>',
      '<0xA6>',
      '<0x99>',
      'b',
    ]);
    expect(stream(ids)).toEqual(['a', '', '', '', '🦙', 'b', '']);
  });

  it('emits the space of a "▁" piece with the word that follows it', () => {
    const ids = tokenizer.encode('Hello world');
    expect(stream(ids)).toEqual(['Hello', ' world', '']);
  });

  it('skips special tokens by default', () => {
    const ids = [...tokenizer.encode('Hi'), 32007, ...tokenizer.encode('<|assistant|>there')];
    expect(stream(ids).join('')).toBe('Hithere');
  });

  it('flushes a broken byte sequence as U+FFFD', () => {
    const decoder = createStreamDecoder(tokenizer);
    expect(decoder.push(tokenizer.tokenToId('<0xF0>')!)).toBe('');
    expect(decoder.flush()).toBe('\uFFFD');
    expect(decoder.flush()).toBe('');
  });
});
