// Tokenized post-training examples and their batches: each example its own row, right-padded to the
// batch's longest (padding is causal-safe and carries no loss), or several packed into rows of up to
// seqLen tokens with their document ids, so that attention stays inside each conversation (the
// model's documents_BS mask); a document's first token is never a target, as at position 0 of a row. A batch is a pure function of (seed, step): a fresh
// seeded order each epoch, so a resumed run draws the batches an uninterrupted one would.
// Test: cd apps/trainer && npx vitest run src/post/chat-data src/post/post.test.ts
import type { Tokenizer } from '@grin-moe/model-grin';
import { Generator } from '@grin-moe/tensor';
import {
  ChatDataError,
  type ChatRecord,
  type ChatTemplate,
  type MaskedTokens,
  type PreferenceRecord,
  tokenizeConversation,
} from './chat-data.js';

export interface PreferencePair {
  chosen: MaskedTokens;
  rejected: MaskedTokens;
}

export interface Tokenized<T> {
  items: T[];
  /** Sequences cut at seqLen (their assistant tokens past it are lost). */
  truncated: number;
  /** Records left out: nothing to learn within seqLen. */
  dropped: number;
}

function cut(tokens: MaskedTokens, seqLen: number): MaskedTokens {
  return { ids: tokens.ids.slice(0, seqLen), assistant: tokens.assistant.slice(0, seqLen) };
}

/** A learned token needs a predecessor: position 0 can never be a target. */
const learnable = (tokens: MaskedTokens) => tokens.assistant.some((a, t) => a && t > 0);

export function sftExamples(
  records: ChatRecord[],
  template: ChatTemplate,
  tokenizer: Tokenizer,
  seqLen: number,
): Tokenized<MaskedTokens> {
  const out: Tokenized<MaskedTokens> = { items: [], truncated: 0, dropped: 0 };
  for (const record of records) {
    const tokens = tokenizeConversation(record.messages, template, tokenizer, record.where);
    if (tokens.ids.length > seqLen) out.truncated++;
    const kept = cut(tokens, seqLen);
    if (learnable(kept)) out.items.push(kept);
    else out.dropped++;
  }
  return out;
}

export function preferencePairs(
  records: PreferenceRecord[],
  template: ChatTemplate,
  tokenizer: Tokenizer,
  seqLen: number,
): Tokenized<PreferencePair> {
  const out: Tokenized<PreferencePair> = { items: [], truncated: 0, dropped: 0 };
  for (const record of records) {
    const side = (completion: PreferenceRecord['chosen']) =>
      tokenizeConversation(
        [...record.prompt, ...completion],
        template,
        tokenizer,
        record.where,
        record.prompt.length,
      );
    const chosen = side(record.chosen);
    const rejected = side(record.rejected);
    if (!chosen.assistant.some(Boolean) || !rejected.assistant.some(Boolean))
      throw new ChatDataError(
        `${record.where}: "chosen" and "rejected" each need an assistant turn after the prompt`,
      );
    if (chosen.ids.length > seqLen || rejected.ids.length > seqLen) out.truncated++;
    const pair = { chosen: cut(chosen, seqLen), rejected: cut(rejected, seqLen) };
    if (learnable(pair.chosen) && learnable(pair.rejected)) out.items.push(pair);
    else out.dropped++;
  }
  return out;
}

/** Deterministic split of the records into train and validation (seeded, at least one each). */
export function splitRecords<T>(
  items: T[],
  fraction: number,
  seed: number,
  where: string,
): { train: T[]; validation: T[] } {
  if (items.length < 2)
    throw new ChatDataError(
      `${where}: needs at least 2 usable records to split into training and validation, found ${items.length}`,
    );
  const order = new Generator(seed).fork(3).permutation(items.length);
  const count = Math.min(items.length - 1, Math.max(1, Math.round(items.length * fraction)));
  const held = new Set(Array.from(order.subarray(0, count)));
  return {
    train: items.filter((_, i) => !held.has(i)),
    validation: items.filter((_, i) => held.has(i)),
  };
}

/** Rows right-padded to the longest: ids and the learned-token mask, [rows, length] row-major. */
export interface PaddedRows {
  ids: Int32Array;
  learned: Uint8Array;
  rows: number;
  length: number;
  /** Real (unpadded) tokens in the rows. */
  tokens: number;
  /** Packed rows: the document of each position (padding: -1), [rows, length] row-major. */
  documents?: Int32Array;
}

export function padRows(rows: MaskedTokens[], padId: number): PaddedRows {
  const length = Math.max(2, ...rows.map((r) => r.ids.length));
  const ids = new Int32Array(rows.length * length).fill(padId);
  const learned = new Uint8Array(rows.length * length);
  let tokens = 0;
  rows.forEach((row, b) => {
    ids.set(row.ids, b * length);
    row.assistant.forEach((a, t) => {
      if (a) learned[b * length + t] = 1;
    });
    tokens += row.ids.length;
  });
  return { ids, learned, rows: rows.length, length, tokens };
}

/**
 * Packs the examples, in order, into rows of at most `seqLen` tokens: each goes into the first row
 * with room (first fit), so a batch of short conversations becomes a few full rows.
 */
export function packRows(examples: MaskedTokens[], seqLen: number, padId: number): PaddedRows {
  const rows: MaskedTokens[][] = [];
  const used: number[] = [];
  for (const example of examples) {
    let r = used.findIndex((n) => n + example.ids.length <= seqLen);
    if (r < 0) {
      r = rows.length;
      rows.push([]);
      used.push(0);
    }
    rows[r]!.push(example);
    used[r]! += example.ids.length;
  }
  const length = Math.max(2, ...used);
  const ids = new Int32Array(rows.length * length).fill(padId);
  const learned = new Uint8Array(rows.length * length);
  const documents = new Int32Array(rows.length * length).fill(-1);
  rows.forEach((row, r) => {
    let at = r * length;
    row.forEach((example, d) => {
      ids.set(example.ids, at);
      documents.fill(d, at, at + example.ids.length);
      // from the document's second token: its first is not predicted from the previous document
      example.assistant.forEach((a, t) => {
        if (a && t > 0) learned[at + t] = 1;
      });
      at += example.ids.length;
    });
  });
  return { ids, learned, rows: rows.length, length, tokens: used.reduce((a, n) => a + n, 0), documents };
}

/** Sample i of the run: a fresh seeded permutation of the items every epoch. */
export class EpochSampler<T> {
  private epoch = -1;
  private order: Int32Array = new Int32Array(0);
  constructor(
    private readonly items: T[],
    private readonly seed: number,
  ) {}

  batch(first: number, count: number): T[] {
    return Array.from({ length: count }, (_, k) => {
      const i = first + k;
      const epoch = Math.floor(i / this.items.length);
      if (epoch !== this.epoch) {
        this.order = new Generator(this.seed).fork(1_000 + epoch).permutation(this.items.length);
        this.epoch = epoch;
      }
      return this.items[this.order[i % this.items.length]!]!;
    });
  }
}
