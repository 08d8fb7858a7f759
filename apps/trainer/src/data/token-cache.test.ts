// The token cache: a second lookup of the same documents under the same tokenizer reads the
// cache (the tokenizer is not called, the stream is identical); a changed document, category or
// tokenizer misses; a trained BPE is cached and encodes as the freshly trained one; a damaged
// entry is named and rebuilt; an unwritable folder is skipped with one note.
// Run: cd apps/trainer && npx vitest run src/data/token-cache
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Tokenizer, trainBpe } from '@grin-moe/model-grin';
import { afterAll, describe, expect, it } from 'vitest';
import { type Doc, tokenizeDocs } from '../train/dataset.js';
import { documentsHash, TokenCache, tokenizerHash } from './token-cache.js';

const root = mkdtempSync(join(tmpdir(), 'grin-token-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const docs: Doc[] = [
  { text: 'the cat sat on the mat', category: 'a' },
  { text: 'the dog sat on the log', category: 'b' },
  { text: 'a cat and a dog', category: 'a' },
];
const categories = ['a', 'b'];
const bpe = (vocabSize = 280) =>
  trainBpe(
    docs.map((d) => d.text),
    { vocabSize, minFrequency: 1 },
  );

/** Looks `docs` up under `tokenizer`, counting the calls to encode (zero on a hit). */
function lookup(cache: TokenCache, tokenizer: Tokenizer, input = docs) {
  let encodes = 0;
  const counting = {
    encode: (text: string) => {
      encodes++;
      return tokenizer.encode(text);
    },
  };
  const result = cache.stream(input, tokenizer, 2, categories, () =>
    tokenizeDocs(input, counting, 2, categories),
  );
  return { ...result, encodes };
}

describe('TokenCache', () => {
  it('a second lookup reads the cache: no encode calls, the same tokens and categories', () => {
    const cache = new TokenCache(join(root, 'hit'));
    const tokenizer = bpe();
    const first = lookup(cache, tokenizer);
    expect([first.hit, first.encodes]).toEqual([false, 3]);
    expect(readdirSync(join(root, 'hit')).filter((f) => f.startsWith('tokens-'))).toHaveLength(1);
    const second = lookup(new TokenCache(join(root, 'hit')), tokenizer);
    expect([second.hit, second.encodes]).toEqual([true, 0]);
    expect(Array.from(second.stream.tokens)).toEqual(Array.from(first.stream.tokens));
    expect(Array.from(second.stream.categoryOf)).toEqual(Array.from(first.stream.categoryOf));
    expect(second.stream.categories).toEqual(categories);
    // The reference: what tokenizeDocs gives with no cache at all.
    expect(Array.from(second.stream.tokens)).toEqual(
      Array.from(tokenizeDocs(docs, tokenizer, 2, categories).tokens),
    );
  });

  it('a changed document, category or tokenizer misses', () => {
    const cache = new TokenCache(join(root, 'miss'));
    const tokenizer = bpe();
    lookup(cache, tokenizer);
    const edited = docs.map((d, i) => (i === 1 ? { ...d, text: `${d.text}.` } : d));
    expect(lookup(cache, tokenizer, edited).hit).toBe(false);
    const recategorized = docs.map((d, i) => (i === 2 ? { ...d, category: 'b' } : d));
    expect(lookup(cache, tokenizer, recategorized).hit).toBe(false);
    const other = bpe(270);
    expect(tokenizerHash(other)).not.toBe(tokenizerHash(tokenizer));
    const changed = lookup(cache, other);
    expect([changed.hit, changed.encodes]).toEqual([false, 3]);
    // Each of them is now cached on its own.
    expect(lookup(cache, tokenizer, edited).hit).toBe(true);
    expect(lookup(cache, other).hit).toBe(true);
    // Moving text between documents changes the hash although the concatenation is the same.
    expect(documentsHash([{ text: 'ab', category: 'a' }])).not.toBe(
      documentsHash([
        { text: 'a', category: 'a' },
        { text: 'b', category: 'a' },
      ]),
    );
  });

  it('caches a trained BPE: the cached one encodes as the trained one, without training again', () => {
    const dir = join(root, 'bpe');
    let trainings = 0;
    const train = () => {
      trainings++;
      return bpe();
    };
    const first = new TokenCache(dir).tokenizer(docs, 280, train);
    const second = new TokenCache(dir).tokenizer(docs, 280, train);
    expect([first.hit, second.hit, trainings]).toEqual([false, true, 1]);
    expect(second.tokenizer.vocabSize).toBe(first.tokenizer.vocabSize);
    expect(tokenizerHash(second.tokenizer)).toBe(tokenizerHash(first.tokenizer));
    const text = 'the cat and the log sat';
    expect(second.tokenizer.encode(text)).toEqual(first.tokenizer.encode(text));
    // Another vocabulary size or other training documents train again.
    expect(new TokenCache(dir).tokenizer(docs, 270, train).hit).toBe(false);
    expect(new TokenCache(dir).tokenizer(docs.slice(1), 280, train).hit).toBe(false);
    expect(trainings).toBe(3);
  });

  it('a damaged entry is named and rebuilt', () => {
    const dir = join(root, 'damaged');
    const tokenizer = bpe();
    lookup(new TokenCache(dir), tokenizer);
    const file = readdirSync(dir).find((f) => f.startsWith('tokens-'))!;
    writeFileSync(join(dir, file), 'not safetensors');
    const lines: string[] = [];
    const again = lookup(new TokenCache(dir, (line) => lines.push(line)), tokenizer);
    expect([again.hit, again.encodes]).toEqual([false, 3]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`token cache: ${join(dir, file)} is unreadable (`);
    expect(lookup(new TokenCache(dir), tokenizer).hit).toBe(true);
  });

  it('an unwritable folder is skipped with one note', () => {
    // A file where the folder should be: refused to root too, unlike a read-only mode.
    const blocker = join(root, 'blocker');
    writeFileSync(blocker, '');
    const lines: string[] = [];
    const cache = new TokenCache(join(blocker, 'cache'), (line) => lines.push(line));
    const tokenizer = bpe();
    expect(lookup(cache, tokenizer).hit).toBe(false);
    expect(cache.tokenizer(docs, 280, () => tokenizer).hit).toBe(false);
    expect(lines).toEqual([
      `token cache: cannot write ${join(blocker, 'cache')} (ENOTDIR); continuing without it`,
    ]);
  });
});
