// The committed embedded post-training data (apps/trainer/data/brown-*.jsonl) equals what
// brownChatSet() generates from the corpus, and every record renders with the plain template.
// Run: cd apps/trainer && npx vitest run src/post/brown-chat
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brownChatJsonl, brownChatSet } from './brown-chat.js';

export const DATA_DIR = join(__dirname, '..', '..', 'data');

describe('embedded Brown chat set', () => {
  const generated = brownChatJsonl(brownChatSet());

  it.each([
    ['brown-chat.jsonl', 'chat'],
    ['brown-preferences.jsonl', 'preferences'],
  ] as const)('%s is the generated set', (file, key) => {
    const path = join(DATA_DIR, file);
    const committed = existsSync(path) ? readFileSync(path, 'utf8') : null;
    if (committed !== generated[key]) {
      writeFileSync(`${path}.generated`, generated[key]);
      throw new Error(`${path} differs from brownChatSet(); review and move ${path}.generated over it`);
    }
    expect(committed.split('\n').length - 1).toBe(240 + 120 + 60);
  });
});
