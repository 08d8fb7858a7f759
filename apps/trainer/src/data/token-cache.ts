// Tokenization once per (tokenizer, data): the token streams of a run, and a BPE tokenizer trained
// from scratch, are cached beside the data, keyed by sha256 of the tokenizer's files and of the
// documents, so a second run over the same data starts at once and a changed tokenizer or corpus
// misses. Entries are written whole and renamed into place (ranks of one run may race); a cache
// that cannot be written is skipped with one note. Test: cd apps/trainer && npx vitest run src/data/token-cache
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, type Tokenizer } from '@grin-moe/model-grin';
import { openSafetensors, writeSafetensors } from '@grin-moe/tensor';
import type { Doc, TokenStream } from '../train/dataset.js';

/** Bumped whenever what an entry holds or how it is made changes, so old entries miss. */
const FORMAT = 'grin-tokens-v1';

const sha256 = () => createHash('sha256').update(FORMAT);

/** The documents' texts and categories, length-prefixed so no two corpora collide. */
export function documentsHash(docs: readonly Doc[]): string {
  const hash = sha256();
  for (const doc of docs) {
    for (const part of [doc.text, doc.category]) {
      const bytes = Buffer.from(part, 'utf8');
      hash.update(`${bytes.length}:`).update(bytes);
    }
  }
  return hash.digest('hex');
}

/** What the tokenizer is: the files Tokenizer.save writes (vocabulary, merges, special tokens). */
export function tokenizerHash(tokenizer: Tokenizer): string {
  const dir = mkdtempSync(join(tmpdir(), 'grin-tokenizer-hash-'));
  try {
    tokenizer.save(dir);
    const hash = sha256().update(String(tokenizer.vocabSize));
    for (const file of ['tokenizer.json', 'tokenizer_config.json'])
      if (existsSync(join(dir, file))) hash.update(file).update(readFileSync(join(dir, file)));
    return hash.digest('hex');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class TokenCache {
  private noted = false;
  /** dir null: no cache (every lookup misses, nothing is written). */
  constructor(
    readonly dir: string | null,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /** The BPE tokenizer trained on `docs` with `vocabSize` tokens, trained only on a miss. */
  tokenizer(
    docs: readonly Doc[],
    vocabSize: number,
    train: () => Tokenizer,
  ): { tokenizer: Tokenizer; hit: boolean } {
    const key = sha256().update(`bpe ${vocabSize} `).update(documentsHash(docs)).digest('hex');
    const path = this.dir && join(this.dir, `bpe-${key.slice(0, 24)}`);
    if (path && existsSync(join(path, 'tokenizer.json'))) {
      try {
        return { tokenizer: loadTokenizer(path), hit: true };
      } catch (error) {
        this.log(
          `token cache: ${path} is unreadable (${(error as Error).message}); training the tokenizer again`,
        );
      }
    }
    const tokenizer = train();
    if (path)
      this.write(path, (temporary) => {
        tokenizer.save(temporary);
        renameSync(temporary, path);
      });
    return { tokenizer, hit: false };
  }

  /** The token stream of `docs` under `tokenizer`, tokenized only on a miss. */
  stream(
    docs: readonly Doc[],
    tokenizer: Tokenizer,
    separator: number,
    categories: readonly string[],
    tokenize: () => TokenStream,
  ): { stream: TokenStream; hit: boolean } {
    const key = sha256()
      .update(`${tokenizerHash(tokenizer)} ${separator} ${JSON.stringify(categories)} `)
      .update(documentsHash(docs))
      .digest('hex');
    const path = this.dir && join(this.dir, `tokens-${key.slice(0, 24)}.safetensors`);
    if (path && existsSync(path)) {
      const stream = this.readStream(path, key, categories);
      if (stream) return { stream, hit: true };
    }
    const stream = tokenize();
    if (path)
      this.write(path, () =>
        writeSafetensors(
          path,
          {
            tokens: { dtype: 'I32', shape: [stream.tokens.length], data: stream.tokens },
            category: { dtype: 'U8', shape: [stream.categoryOf.length], data: stream.categoryOf },
          },
          { key, categories: JSON.stringify(stream.categories) },
        ),
      );
    return { stream, hit: false };
  }

  private readStream(path: string, key: string, categories: readonly string[]): TokenStream | null {
    try {
      const file = openSafetensors(path);
      try {
        if (file.metadata?.key !== key) throw new Error(`its key is not ${key.slice(0, 24)}...`);
        const tokens = file.read('tokens', 'raw') as Int32Array;
        const categoryOf = file.read('category', 'raw') as Uint8Array;
        if (tokens.length !== categoryOf.length)
          throw new Error(`${tokens.length} tokens but ${categoryOf.length} categories`);
        return { tokens, categoryOf, categories: [...categories] };
      } finally {
        file.close();
      }
    } catch (error) {
      this.log(`token cache: ${path} is unreadable (${(error as Error).message}); tokenizing again`);
      return null;
    }
  }

  /** Runs `fill` on a fresh temporary path beside `path`; a failure disables the cache once, noted. */
  private write(path: string, fill: (temporary: string) => void): void {
    const temporary = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      mkdirSync(this.dir!, { recursive: true });
      fill(temporary);
    } catch (error) {
      try {
        rmSync(temporary, { recursive: true, force: true });
      } catch {} // the folder itself is unusable: nothing was written
      if (existsSync(path)) return; // another rank of the run wrote it first
      if (!this.noted)
        this.log(
          `token cache: cannot write ${this.dir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); continuing without it`,
        );
      this.noted = true;
    }
  }
}
