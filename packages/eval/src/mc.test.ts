// Multiple-choice scoring against a manual sum of float64 log-softmax values from one unbatched
// forward pass per choice (so the padded batch, the context/continuation split and the shot
// prompts are all checked), the literal prompts of each format, stderr, and input errors.
// Run: cd packages/eval && npx vitest run src/mc
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { accuracyWithStderr, multipleChoice } from './mc.js';
import { buildPrompt, readMcFile, sampleShots } from './mc-formats.js';
import { fixtures, referenceLogProbs, tinyModel } from './test-helpers.js';

const { model, tokenizer } = tinyModel();
const at = (name: string) => join(fixtures, name);

/** Sum of log p over the continuation, found by encoding prompt and prompt + choice separately. */
function referenceScore(prompt: string, choice: string): number {
  const context = tokenizer.encode(prompt);
  const whole = tokenizer.encode(prompt + choice);
  let split = 0;
  while (split < context.length && whole[split] === context[split]) split++;
  return referenceLogProbs(model, whole)
    .slice(split - 1)
    .reduce((a, b) => a + b, 0);
}

describe('multiple choice', () => {
  it.each([
    ['hellaswag', 0],
    ['hellaswag', 2],
    ['arc', 0],
    ['arc', 1],
    ['mmlu', 0],
    ['mmlu', 2],
  ] as const)('%s %i-shot scores match a manual log-softmax sum', (format, shots) => {
    const out = join(mkdtempSync(join(tmpdir(), 'grin-mc-')), 'eval', `mc-${format}.json`);
    const result = multipleChoice(model, tokenizer, at(`${format}.jsonl`), {
      shots,
      shotFile: at(`${format}-shots.jsonl`),
      seed: 5,
      out,
    });
    expect(result.format).toBe(format);
    const { items } = readMcFile(at(`${format}.jsonl`));
    const pool = readMcFile(at(`${format}-shots.jsonl`)).items;
    expect(result.n).toBe(items.length);
    items.forEach((item, i) => {
      const prompt = buildPrompt(item, sampleShots(pool, shots, new T.Generator(5).fork(i)));
      const scores = item.choices.map((choice) => referenceScore(prompt, choice));
      const got = result.items[i]!;
      got.logLikelihoods.forEach((ll, c) => expect(ll).toBeCloseTo(scores[c]!, 4));
      expect(got.pred).toBe(scores.indexOf(Math.max(...scores)));
      const norm = scores.map((s, c) => s / item.choices[c]!.length);
      expect(got.predNorm).toBe(norm.indexOf(Math.max(...norm)));
      expect(got.gold).toBe(item.gold);
    });
    const acc = result.items.filter((r) => r.pred === r.gold).length / result.n;
    expect(result.accuracy).toBeCloseTo(acc, 12);
    expect(JSON.parse(readFileSync(out, 'utf8')).accuracy).toBeCloseTo(acc, 12);
  });

  it('writes the prompts of each format as lm-evaluation-harness does', () => {
    const hs = readMcFile(at('hellaswag.jsonl')).items;
    expect(hs[2]!.gold).toBe(0); // "label": "0" is accepted
    expect(buildPrompt(hs[0]!, [hs[1]!]) + hs[0]!.choices[0]).toBe(
      'A man is washing a car. He rinses the soap off with a hose.\n\nThe cat sat on the mat.',
    );
    const arc = readMcFile(at('arc.jsonl')).items;
    expect(arc[2]!.gold).toBe(2);
    expect(buildPrompt(arc[0]!, []) + arc[0]!.choices[arc[0]!.gold]).toBe(
      'Question: Which animal says meow?\nAnswer: cat',
    );
    const mmlu = readMcFile(at('mmlu.jsonl')).items;
    expect(mmlu.map((m) => m.gold)).toEqual([1, 2, 0]);
    expect(buildPrompt(mmlu[0]!, [])).toBe(
      'The following are multiple choice questions (with answers) about elementary mathematics.\n\nWhat is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:',
    );
    expect(mmlu[0]!.choices).toEqual([' A', ' B', ' C', ' D']);
  });

  it('draws shots reproducibly from the seed', () => {
    const pool = readMcFile(at('hellaswag-shots.jsonl')).items;
    const draw = (seed: number) => sampleShots(pool, 2, new T.Generator(seed).fork(0)).map((s) => s.id);
    expect(draw(1)).toEqual(draw(1));
    expect(new Set(draw(1)).size).toBe(2);
    expect(() => sampleShots(pool, 4, new T.Generator(1))).toThrow(
      /4-shot prompts need at least 4 items in the shot pool, it has 3/,
    );
  });

  it('computes accuracy with its sample standard error', () => {
    expect(accuracyWithStderr([true, true, false, false])).toEqual({
      accuracy: 0.5,
      stderr: Math.sqrt(0.25 / 3),
    });
    expect(accuracyWithStderr([true])).toEqual({ accuracy: 1, stderr: 0 });
  });

  it('names bad input', () => {
    expect(() => multipleChoice(model, tokenizer, at('unknown-format.jsonl'))).toThrow(
      /unknown-format\.jsonl:1: unknown multiple-choice format \(fields prompt, options\); expected HellaSwag/,
    );
    expect(() => multipleChoice(model, tokenizer, at('bad.jsonl'))).toThrow(/bad\.jsonl:2: invalid JSON/);
    expect(() => multipleChoice(model, tokenizer, at('nope.jsonl'))).toThrow(
      /nope\.jsonl: cannot read the multiple-choice file \(no such file\)/,
    );
    expect(() => multipleChoice(model, tokenizer, at('arc.jsonl'), { shots: 1 })).toThrow(
      /need a shot pool file/,
    );
    expect(() => multipleChoice(model, tokenizer, at('arc.jsonl'), { format: 'mmlu' })).toThrow(
      /arc\.jsonl:1: expected a mmlu item/,
    );
    expect(() => readMcFile(at('arc.jsonl'), 'piqa' as never)).toThrow(
      /unknown multiple-choice format 'piqa'; valid: hellaswag, arc, mmlu/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'grin-mc-bad-'));
    const bad = join(dir, 'bad-arc.jsonl');
    writeFileSync(
      bad,
      '{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"}\n',
    );
    expect(() => readMcFile(bad)).toThrow(
      /bad-arc\.jsonl:1: "answerKey" "C" is not one of choices\.label \["A","B"\]/,
    );
  });
});
