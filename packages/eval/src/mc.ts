// Multiple-choice scoring by log-likelihood (lm-evaluation-harness' loglikelihood requests): each
// choice's score is the sum of log p(token | everything before) over its continuation tokens, the
// prediction is the argmax; acc_norm divides each score by the continuation's length in characters
// first (HellaSwag's length-normalised accuracy). k-shot prompts come from a separate shot pool,
// drawn per item from a seeded stream. Accuracy with its standard error sqrt(p(1-p)/(n-1)).
// Test: cd packages/eval && npx vitest run src/mc
import type { GrinModel, Tokenizer } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import { EvaluationError, writeJson } from './io.js';
import { buildPrompt, type McFormat, type McItem, readMcFile, sampleShots } from './mc-formats.js';

export interface McOptions {
  /** Shots per prompt (default 0). */
  shots?: number;
  /** Task file of solved examples to draw shots from (required when shots > 0). */
  shotFile?: string;
  /** Seed of the shot draws (default 1234). */
  seed?: number;
  format?: McFormat;
  /** Score only the first N items. */
  limit?: number;
  /** Prepend the tokenizer's BOS to every sequence (default false). */
  addBos?: boolean;
  out?: string;
  progress?: (done: number, total: number) => void;
}

export interface McItemResult {
  id: string;
  gold: number;
  /** Summed log-probabilities of each choice's continuation tokens. */
  logLikelihoods: number[];
  /** Continuation tokens of each choice. */
  tokens: number[];
  pred: number;
  predNorm: number;
}

export interface McResult {
  file: string;
  format: McFormat;
  shots: number;
  seed: number;
  n: number;
  accuracy: number;
  accuracyStderr: number;
  /** Scores divided by the continuation's length in characters. */
  accuracyNorm: number;
  accuracyNormStderr: number;
  items: McItemResult[];
}

/** Context and continuation ids of prompt + choice, split where the two encodings part (lm-eval's _encode_pair). */
export function encodePair(
  tokenizer: Tokenizer,
  prompt: string,
  choice: string,
  addBos = false,
): { ids: number[]; start: number } {
  const whole = tokenizer.encode(prompt + choice, { addBos });
  const context = tokenizer.encode(prompt, { addBos });
  let common = 0;
  while (common < context.length && common < whole.length && whole[common] === context[common]) common++;
  if (common >= whole.length)
    throw new EvaluationError(`the choice ${JSON.stringify(choice)} adds no tokens after its prompt`);
  if (common === 0)
    throw new EvaluationError(
      `the prompt before ${JSON.stringify(choice)} has no tokens to condition on; pass addBos`,
    );
  return { ids: whole, start: common };
}

/**
 * Summed log-probabilities of ids[start..] given the tokens before, for several sequences in one
 * padded forward pass (right padding cannot reach earlier positions of a causal model, and the
 * dropless router treats every token on its own). Sequences longer than the model's context are
 * cut from the left.
 */
export function continuationLogLikelihoods(
  model: GrinModel,
  sequences: Array<{ ids: number[]; start: number }>,
): number[] {
  const maxLen = model.config.maxPositionEmbeddings;
  const cut = sequences.map(({ ids, start }) => {
    const drop = Math.max(0, ids.length - maxLen);
    if (drop >= start)
      throw new EvaluationError(
        `a continuation of ${ids.length - start} tokens does not fit the model's context of ${maxLen}`,
      );
    return { ids: ids.slice(drop), start: start - drop };
  });
  const S = Math.max(...cut.map((s) => s.ids.length));
  const B = cut.length;
  const ids = new Int32Array(B * S);
  const targets = new Int32Array(B * S).fill(IGNORE);
  cut.forEach(({ ids: row, start }, b) => {
    ids.set(row, b * S);
    // position s predicts token s+1: the continuation's tokens start..end-1 come from positions start-1..end-2
    for (let s = start - 1; s + 1 < row.length; s++) targets[b * S + s] = row[s + 1]!;
  });
  return T.noGrad(() =>
    T.tidy(() => {
      const ids_BS = T.tensor(ids, { shape: [B, S], dtype: 'i32', device: model.device });
      const { logits_BSV } = model.forward(ids_BS, { training: false });
      const targets_BS = T.tensor(targets, { shape: [B, S], dtype: 'i32', device: model.device });
      const nll_BS = T.sum(
        T.crossEntropy(logits_BSV, targets_BS, { ignoreIndex: IGNORE, reduction: 'none' }),
        1,
      );
      return Array.from(nll_BS.toArray(), (v) => -v);
    }),
  );
}

const IGNORE = -100;

const argmax = (values: number[]) => values.reduce((best, v, i) => (v > values[best]! ? i : best), 0);

/** Mean of 0/1 outcomes and its sample standard error (lm-eval's mean_stderr). */
export function accuracyWithStderr(correct: boolean[]): { accuracy: number; stderr: number } {
  const n = correct.length;
  const p = correct.filter(Boolean).length / n;
  return { accuracy: p, stderr: n > 1 ? Math.sqrt((p * (1 - p)) / (n - 1)) : 0 };
}

export function scoreItems(
  model: GrinModel,
  tokenizer: Tokenizer,
  items: McItem[],
  pool: McItem[],
  options: McOptions = {},
): McItemResult[] {
  const k = options.shots ?? 0;
  const root = new T.Generator(options.seed ?? 1234);
  return items.map((item, index) => {
    const prompt = buildPrompt(item, sampleShots(pool, k, root.fork(index)));
    const pairs = item.choices.map((choice) => encodePair(tokenizer, prompt, choice, options.addBos));
    const logLikelihoods = continuationLogLikelihoods(model, pairs);
    options.progress?.(index + 1, items.length);
    return {
      id: item.id,
      gold: item.gold,
      logLikelihoods,
      tokens: pairs.map((p) => p.ids.length - p.start),
      pred: argmax(logLikelihoods),
      predNorm: argmax(logLikelihoods.map((ll, c) => ll / item.choices[c]!.length)),
    };
  });
}

/** Scores a HellaSwag / ARC / MMLU JSONL file; see McOptions. */
export function multipleChoice(
  model: GrinModel,
  tokenizer: Tokenizer,
  file: string,
  options: McOptions = {},
): McResult {
  const shots = options.shots ?? 0;
  if (!Number.isInteger(shots) || shots < 0)
    throw new EvaluationError(`mc: shots must be an integer >= 0, got ${shots}`);
  const { format, items: all } = readMcFile(file, options.format);
  let pool: McItem[] = [];
  if (shots > 0) {
    if (!options.shotFile)
      throw new EvaluationError(
        `mc: ${shots}-shot prompts need a shot pool file (shotFile / --shots-from FILE)`,
      );
    const shotTask = readMcFile(options.shotFile, format);
    pool = shotTask.items;
  }
  const items = options.limit !== undefined ? all.slice(0, options.limit) : all;
  const results = scoreItems(model, tokenizer, items, pool, options);
  const plain = accuracyWithStderr(results.map((r) => r.pred === r.gold));
  const norm = accuracyWithStderr(results.map((r) => r.predNorm === r.gold));
  const result: McResult = {
    file,
    format,
    shots,
    seed: options.seed ?? 1234,
    n: results.length,
    accuracy: plain.accuracy,
    accuracyStderr: plain.stderr,
    accuracyNorm: norm.accuracy,
    accuracyNormStderr: norm.stderr,
    items: results,
  };
  return options.out ? writeJson(options.out, result) : result;
}
