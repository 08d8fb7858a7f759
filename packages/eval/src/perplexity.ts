// Perplexity of a model on a text or JSONL {"text"} file: the documents are tokenized and joined
// (EOS between documents when the tokenizer has one), cut into non-overlapping windows of seqLen
// tokens, and every window predicts its tokens 2..n from the ones before (as `grin train`'s
// validation loss). Reports the mean next-token cross-entropy (nats), perplexity = exp(mean),
// bits per UTF-8 byte, and the tokens counted. Test: cd packages/eval && npx vitest run src/perplexity
import type { GrinModel, Tokenizer } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import { EvaluationError, readDocuments, writeJson } from './io.js';

export interface PerplexityOptions {
  /** Tokens per window (default: min(512, max_position_embeddings)). */
  seqLen?: number;
  /** Windows per forward pass (default 4). */
  batchSize?: number;
  /** Stop after this many tokens of the joined stream (default: all). */
  maxTokens?: number;
  /** Write the result here as JSON. */
  out?: string;
  /** Called after every batch with windows done and the total. */
  progress?: (done: number, total: number) => void;
}

export interface PerplexityResult {
  file: string;
  documents: number;
  seqLen: number;
  windows: number;
  /** Predicted tokens (each window's first token has no context and is not counted). */
  tokens: number;
  bytes: number;
  meanCrossEntropy: number;
  perplexity: number;
  bitsPerByte: number;
}

/** Token stream of the documents, EOS between them where the tokenizer has one; at most `limit` ids. */
export function tokenStream(
  tokenizer: Tokenizer,
  texts: string[],
  limit = Number.POSITIVE_INFINITY,
): number[] {
  const eos = tokenizer.specialIds.eos;
  const ids: number[] = [];
  for (let i = 0; i < texts.length && ids.length < limit; i++) {
    if (i > 0 && eos !== undefined) ids.push(eos);
    for (const id of tokenizer.encode(texts[i]!)) ids.push(id);
  }
  return ids.length > limit ? ids.slice(0, limit) : ids;
}

/** Summed next-token negative log-likelihood of each window row (one forward pass, eval mode). */
export function windowNll(model: GrinModel, rows: number[][]): number {
  return T.noGrad(() =>
    T.tidy(() => {
      const S = rows[0]!.length;
      const ids_BS = T.tensor(Int32Array.from(rows.flat()), {
        shape: [rows.length, S],
        dtype: 'i32',
        device: model.device,
      });
      const { logits_BSV } = model.forward(ids_BS, { training: false });
      const targets = new Int32Array(rows.length * S).fill(IGNORE);
      rows.forEach((row, b) => {
        for (let s = 0; s + 1 < S; s++) targets[b * S + s] = row[s + 1]!;
      });
      const targets_BS = T.tensor(targets, { shape: [rows.length, S], dtype: 'i32', device: model.device });
      return T.crossEntropy(logits_BSV, targets_BS, { ignoreIndex: IGNORE, reduction: 'sum' }).item();
    }),
  );
}

const IGNORE = -100;

export function perplexity(
  model: GrinModel,
  tokenizer: Tokenizer,
  file: string,
  options: PerplexityOptions = {},
): PerplexityResult {
  const seqLen = options.seqLen ?? Math.min(512, model.config.maxPositionEmbeddings);
  const batchSize = options.batchSize ?? 4;
  if (!Number.isInteger(seqLen) || seqLen < 2)
    throw new EvaluationError(`perplexity: seqLen must be an integer >= 2, got ${seqLen}`);
  if (seqLen > model.config.maxPositionEmbeddings) {
    throw new EvaluationError(
      `perplexity: seqLen ${seqLen} exceeds the model's max_position_embeddings (${model.config.maxPositionEmbeddings})`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new EvaluationError(`perplexity: batchSize must be an integer >= 1, got ${batchSize}`);
  const docs = readDocuments(file);
  const ids = tokenStream(
    tokenizer,
    docs.map((d) => d.text),
    options.maxTokens,
  );
  const outOfRange = ids.find((id) => id >= model.config.vocabSize);
  if (outOfRange !== undefined) {
    throw new EvaluationError(
      `perplexity: token id ${outOfRange} is outside the model's vocab_size ${model.config.vocabSize}; is this the model's own tokenizer?`,
    );
  }
  if (ids.length < 2)
    throw new EvaluationError(`${file}: only ${ids.length} token(s); perplexity needs at least 2`);

  // Full windows go in batches; a shorter tail (>= 2 tokens) is a batch of its own.
  const windows: number[][] = [];
  for (let start = 0; start + 1 < ids.length; start += seqLen) windows.push(ids.slice(start, start + seqLen));
  let nll = 0;
  let tokens = 0;
  let done = 0;
  let i = 0;
  while (i < windows.length) {
    const length = windows[i]!.length;
    const batch: number[][] = [];
    while (i < windows.length && batch.length < batchSize && windows[i]!.length === length)
      batch.push(windows[i++]!);
    nll += windowNll(model, batch);
    tokens += batch.length * (length - 1);
    done += batch.length;
    options.progress?.(done, windows.length);
  }
  // Bytes of the text scored: the documents' own bytes, or (cut by maxTokens) those of the decoded ids.
  const scoredBytes =
    options.maxTokens === undefined
      ? docs.reduce((sum, d) => sum + Buffer.byteLength(d.text, 'utf8'), 0)
      : Buffer.byteLength(tokenizer.decode(ids, { skipSpecial: true }), 'utf8');
  const mean = nll / tokens;
  const result: PerplexityResult = {
    file,
    documents: docs.length,
    seqLen,
    windows: windows.length,
    tokens,
    bytes: scoredBytes,
    meanCrossEntropy: mean,
    perplexity: Math.exp(mean),
    bitsPerByte: nll / Math.LN2 / scoredBytes,
  };
  return options.out ? writeJson(options.out, result) : result;
}
