// perplexity() against a direct loop over the logits of each window (float64 log-softmax), on a
// plain-text and a JSONL fixture; and the errors for bad input, which name the file and line.
// Run: cd packages/eval && npx vitest run src/perplexity
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDocuments } from './io.js';
import { perplexity, tokenStream } from './perplexity.js';
import { fixtures, referenceLogProbs, tinyModel } from './test-helpers.js';

const { model, tokenizer } = tinyModel();

function reference(file: string, seqLen: number): { mean: number; tokens: number } {
  const ids = tokenStream(
    tokenizer,
    readDocuments(file).map((d) => d.text),
  );
  let nll = 0;
  let tokens = 0;
  for (let start = 0; start + 1 < ids.length; start += seqLen) {
    const logProbs = referenceLogProbs(model, ids.slice(start, start + seqLen));
    nll -= logProbs.reduce((a, b) => a + b, 0);
    tokens += logProbs.length;
  }
  return { mean: nll / tokens, tokens };
}

describe('perplexity', () => {
  it.each([
    ['text.txt', 8, 3],
    ['genres.jsonl', 16, 2],
  ])('%s (seqLen %i, batch %i) matches a direct loop over the logits', (name, seqLen, batchSize) => {
    const file = join(fixtures, name);
    const out = join(mkdtempSync(join(tmpdir(), 'grin-ppl-')), 'eval', 'ppl.json');
    const calls: number[] = [];
    const result = perplexity(model, tokenizer, file, {
      seqLen,
      batchSize,
      out,
      progress: (done) => calls.push(done),
    });
    const ref = reference(file, seqLen);
    expect(result.tokens).toBe(ref.tokens);
    expect(result.meanCrossEntropy).toBeCloseTo(ref.mean, 5);
    expect(result.perplexity).toBeCloseTo(Math.exp(ref.mean), 3);
    expect(result.bitsPerByte).toBeCloseTo((ref.mean * ref.tokens) / Math.LN2 / result.bytes, 6);
    expect(calls.at(-1)).toBe(result.windows);
    expect(JSON.parse(readFileSync(out, 'utf8')).tokens).toBe(ref.tokens);
  });

  it('maxTokens cuts the stream', () => {
    const result = perplexity(model, tokenizer, join(fixtures, 'text.txt'), { seqLen: 8, maxTokens: 20 });
    expect(result.tokens).toBe(7 + 7 + 3);
  });

  it('names bad input', () => {
    expect(() => perplexity(model, tokenizer, join(fixtures, 'missing.txt'))).toThrow(
      /missing\.txt: cannot read the text file \(no such file\)/,
    );
    expect(() => perplexity(model, tokenizer, join(fixtures, 'bad.jsonl'))).toThrow(
      /bad\.jsonl:2: invalid JSON/,
    );
    expect(() => perplexity(model, tokenizer, join(fixtures, 'text.txt'), { seqLen: 1 })).toThrow(
      /seqLen must be an integer >= 2/,
    );
    expect(() => perplexity(model, tokenizer, join(fixtures, 'text.txt'), { seqLen: 4096 })).toThrow(
      /exceeds the model's max_position_embeddings \(512\)/,
    );
    expect(existsSync(join(fixtures, 'missing.txt'))).toBe(false);
  });
});
