// Token streams and batches for training. Documents are tokenized once and concatenated with
// an end-of-text id between them; every token keeps its document's category (the Brown genre)
// for routing analysis. The batch of a step is a pure function of (seed, step), so a resumed run
// sees exactly the batches an uninterrupted one would.
// Test: cd apps/trainer && npx vitest run src/train/dataset.test.ts
import { Generator } from '@grin-moe/tensor';

export interface Doc {
  text: string;
  category: string;
}

export interface TokenStream {
  tokens: Int32Array;
  /** Category index (into `categories`) of each token. */
  categoryOf: Uint8Array;
  categories: string[];
}

export interface TextEncoder {
  encode(text: string): number[];
}

export function tokenizeDocs(
  docs: Doc[],
  tokenizer: TextEncoder,
  separatorId: number,
  categories: string[],
  onProgress?: (done: number) => void,
): TokenStream {
  const parts: number[][] = [];
  const cats: number[] = [];
  let total = 0;
  docs.forEach((doc, i) => {
    const ids = tokenizer.encode(doc.text);
    ids.push(separatorId);
    parts.push(ids);
    const c = categories.indexOf(doc.category);
    cats.push(c < 0 ? 0 : c);
    total += ids.length;
    onProgress?.(i + 1);
  });
  const tokens = new Int32Array(total);
  const categoryOf = new Uint8Array(total);
  let at = 0;
  parts.forEach((ids, i) => {
    tokens.set(ids, at);
    categoryOf.fill(cats[i]!, at, at + ids.length);
    at += ids.length;
  });
  return { tokens, categoryOf, categories };
}

/** Non-overlapping windows of seqLen tokens, visited in a fresh seeded order every epoch. */
export class WindowSampler {
  readonly windows: number;
  private readonly orders = new Map<number, Int32Array>();
  constructor(
    readonly stream: TokenStream,
    readonly seqLen: number,
    private readonly seed: number,
  ) {
    this.windows = Math.floor(stream.tokens.length / seqLen);
    if (this.windows < 1)
      throw new RangeError(
        `dataset: ${stream.tokens.length} tokens are fewer than one window of seqLen ${seqLen}`,
      );
  }

  /** Window index of the i-th sample of the run. */
  windowAt(i: number): number {
    const epoch = Math.floor(i / this.windows);
    let order = this.orders.get(epoch);
    if (!order) {
      order = new Generator(this.seed).fork(1_000 + epoch).permutation(this.windows);
      this.orders.clear();
      this.orders.set(epoch, order);
    }
    return order[i % this.windows]!;
  }

  /** Rows [count, seqLen] of samples first..first+count-1. */
  rows(first: number, count: number): Int32Array {
    const out = new Int32Array(count * this.seqLen);
    for (let r = 0; r < count; r++) {
      const start = this.windowAt(first + r) * this.seqLen;
      out.set(this.stream.tokens.subarray(start, start + this.seqLen), r * this.seqLen);
    }
    return out;
  }
}

/** The first `count` windows in order (validation: always the same tokens). */
export function fixedWindows(
  stream: TokenStream,
  seqLen: number,
  count: number,
): { ids: Int32Array; rows: number; category: Uint8Array } {
  const rows = Math.min(count, Math.floor(stream.tokens.length / seqLen));
  if (rows < 1)
    throw new RangeError(
      `dataset: the validation split has ${stream.tokens.length} tokens, fewer than one window of ${seqLen}`,
    );
  const category = new Uint8Array(rows);
  for (let r = 0; r < rows; r++)
    category[r] = majority(
      stream.categoryOf.subarray(r * seqLen, (r + 1) * seqLen),
      stream.categories.length,
    );
  return { ids: stream.tokens.slice(0, rows * seqLen), rows, category };
}

function majority(cats: Uint8Array, n: number): number {
  const counts = new Array<number>(n).fill(0);
  for (const c of cats) counts[c]!++;
  return counts.indexOf(Math.max(...counts));
}

/**
 * The unigram baseline: the entropy of the training unigram distribution, and the cross-entropy
 * of that distribution (add-one smoothed) on the validation tokens, in nats per token.
 */
export function unigramEntropy(
  train: Int32Array,
  validation: Int32Array,
  vocabSize: number,
): { trainEntropy: number; validationCrossEntropy: number } {
  const counts = new Float64Array(vocabSize);
  for (const t of train) counts[t]!++;
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / train.length) * Math.log(c / train.length);
  const denominator = train.length + vocabSize;
  let ce = 0;
  for (const t of validation) ce -= Math.log((counts[t]! + 1) / denominator);
  return { trainEntropy: h, validationCrossEntropy: ce / validation.length };
}
