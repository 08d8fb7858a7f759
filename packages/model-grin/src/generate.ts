// Autoregressive generation for GrinModel (batch 1): greedy, temperature and top-p (nucleus)
// sampling from a seeded Generator, stop tokens, a new-token budget and an onToken callback for
// streaming. With a KV cache (default) each step feeds one token; the cache keeps only what the
// sliding window can still see. Non-finite logits stop generation with a GenerationError.
// Test: cd packages/model-grin && npx vitest run src/generate
import { type Generator, noGrad, type Tensor, tidy } from '@grin-moe/tensor';
import { createKvCache, disposeKvCache, type GrinModel, idsTensor } from './model.js';

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 (default): greedy. */
  temperature?: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches topP. */
  topP?: number;
  /** Needed for sampling (temperature > 0). */
  generator?: Generator;
  /** Generation stops after emitting one of these (default: the config's eos ids). */
  stopTokens?: number[];
  /** Called with each new token as soon as it is chosen; return false to stop. */
  onToken?: (token: number, index: number) => unknown;
  /** Default true; false recomputes the whole sequence every step (the reference for tests). */
  useCache?: boolean;
}

export interface GenerateResult {
  /** The new tokens (the stop token included, when one ended generation). */
  tokens: number[];
  stopReason: 'stop-token' | 'max-new-tokens' | 'callback';
}

/** Picks the next token from one row of logits [V]. */
export function sampleToken(
  logits: ArrayLike<number>,
  options: Pick<GenerateOptions, 'temperature' | 'topP' | 'generator'>,
): number {
  const { temperature = 0, topP = 1 } = options;
  if (!(temperature >= 0)) throw new RangeError(`generate: temperature must be >= 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`generate: topP must be in (0, 1], got ${topP}`);
  if (temperature === 0) return argmax(logits);
  if (!options.generator) throw new Error('generate: sampling (temperature > 0) needs a generator');
  const V = logits.length;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[i]!);
  const probs = new Float64Array(V);
  let total = 0;
  for (let i = 0; i < V; i++) total += probs[i] = Math.exp((logits[i]! - max) / temperature);
  for (let i = 0; i < V; i++) probs[i]! /= total;
  // Most likely first; ties keep the lower id first so the draw is reproducible.
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => probs[b]! - probs[a]! || a - b);
  let kept = 0;
  let mass = 0;
  while (kept < V && (kept === 0 || mass < topP)) mass += probs[order[kept++]!]!;
  const u = options.generator.uniform(1, 'f64')[0]! * mass;
  let acc = 0;
  for (let i = 0; i < kept; i++) {
    acc += probs[order[i]!]!;
    if (u < acc) return order[i]!;
  }
  return order[kept - 1]!;
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function lastLogits(logits_BSV: Tensor): ArrayLike<number> {
  const S = logits_BSV.shape[1]!;
  return tidy(() =>
    logits_BSV
      .select(1, S - 1)
      .select(0, 0)
      .toArray(),
  ) as ArrayLike<number>;
}

export class GenerationError extends Error {}

/** Non-finite logits mean broken weights or an overflow: stop rather than print token 0 forever. */
function checkFinite(logits: ArrayLike<number>, index: number, position: number): void {
  for (let i = 0; i < logits.length; i++) {
    const value = logits[i]!;
    if (value - value !== 0) {
      throw new GenerationError(
        `generate: the logits for new token ${index} (position ${position}) are not finite (${value} at token id ${i}); the model's weights or activations overflowed, so generation stopped`,
      );
    }
  }
}

/** Continues `prompt` (token ids) in eval mode without gradients; throws GenerationError on non-finite logits. */
export function generate(model: GrinModel, prompt: number[], options: GenerateOptions = {}): GenerateResult {
  const { maxNewTokens = 128, useCache = true } = options;
  if (prompt.length === 0) throw new RangeError('generate: the prompt needs at least one token');
  const V = model.config.vocabSize;
  prompt.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= V)
      throw new RangeError(`generate: prompt token ${i} is ${id}; ids must be integers in [0, ${V})`);
  });
  const stop = new Set(options.stopTokens ?? model.config.eosTokenIds);
  const sequence = [...prompt];
  const tokens: number[] = [];
  const cache = useCache ? createKvCache(model.config) : undefined;
  let stopReason: GenerateResult['stopReason'] = 'max-new-tokens';
  try {
    noGrad(() => {
      let feed = sequence;
      while (tokens.length < maxNewTokens) {
        const logits = tidy(() => {
          const ids = idsTensor([feed]);
          return lastLogits(model.forward(ids, { training: false, cache }).logits_BSV);
        });
        checkFinite(logits, tokens.length, sequence.length);
        const token = sampleToken(logits, options);
        tokens.push(token);
        sequence.push(token);
        if (options.onToken?.(token, tokens.length - 1) === false) {
          stopReason = 'callback';
          break;
        }
        if (stop.has(token)) {
          stopReason = 'stop-token';
          break;
        }
        feed = useCache ? [token] : sequence;
      }
    });
  } finally {
    if (cache) disposeKvCache(cache);
  }
  return { tokens, stopReason };
}
