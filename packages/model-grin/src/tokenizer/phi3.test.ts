// Phi-3 tokenizer against known ids: Llama-2 encodings from llama-tokenizer-js's own test table
// (checked there against the reference tokenizer) and a Phi-3 chat encoding from swift-transformers'
// tests; plus added tokens, the chat template, padding rows and byte-fallback round trips.
// Run: cd packages/model-grin && npx vitest run src/tokenizer/phi3.test.ts

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HfTokenizer, loadTokenizer } from './hf-tokenizer.js';
import {
  applyPhi3ChatTemplate,
  PHI3_STOP_IDS,
  PHI3_VOCAB_SIZE,
  phi3Tokenizer,
  phi3TokenizerJson,
} from './phi3.js';

// [text, ids with BOS] — each text is encoded as the start of a prompt.
const LLAMA2_CASES: [string, number[]][] = [
  ['Hello world', [1, 15043, 3186]],
  ['Hello world!', [1, 15043, 3186, 29991]],
  ['grabbed', [1, 2646, 1327, 287]],
  ['\n', [1, 29871, 13]],
  ['\ttabs\t\t\t\tout here', [1, 29871, 12, 21175, 12, 12, 12, 12, 449, 1244]],
  ['ax\n####\nboo', [1, 4853, 13, 4136, 13, 833, 29877]],
  ['镇', [1, 29871, 30411]],
  ['🦙', [1, 29871, 243, 162, 169, 156]],
  ['🦙Ꙋ', [1, 29871, 243, 162, 169, 156, 237, 156, 141]],
  ['Ꙋ🦙', [1, 29871, 237, 156, 141, 243, 162, 169, 156]],
];
// Texts starting with a space: the legacy layout keeps that space as its own '▁'.
const LEADING_SPACE_CASES: [string, number[]][] = [
  [' grabbed', [1, 29871, 2646, 1327, 287]],
  ['           grabbed', [1, 9651, 2646, 1327, 287]],
  [' \n', [1, 259, 13]],
];
const ROUND_TRIP = [
  'Hello, world.',
  'Ça coûte 5 € — naïve café, Zürich, São Paulo',
  '日本語のテキスト、中文文本',
  'emoji 🦙🤗👩‍🔬 and Ꙋ',
  'two  spaces\nnew line\ttab',
];

let phi3: HfTokenizer;
let legacy: HfTokenizer;
let dir: string;

beforeAll(async () => {
  phi3 = await phi3Tokenizer();
  legacy = await phi3Tokenizer({ legacy: true });
  dir = mkdtempSync(join(tmpdir(), 'phi3-tokenizer-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('phi3Tokenizer', () => {
  it.each(LLAMA2_CASES)('encodes %j like Llama-2', (text, ids) => {
    expect(phi3.encode(text, { addBos: true })).toEqual(ids);
    expect(legacy.encode(text, { addBos: true })).toEqual(ids);
  });

  it.each(LEADING_SPACE_CASES)('legacy layout encodes %j like Llama-2', (text, ids) => {
    expect(legacy.encode(text, { addBos: true })).toEqual(ids);
    expect(legacy.decode(ids, { skipSpecial: true })).toBe(text);
  });

  it('encodes the chat template like Phi-3 (no ▁ after role tokens, their \\n swallowed)', () => {
    const prompt = applyPhi3ChatTemplate(
      [{ role: 'user', content: 'Describe the Swift programming language.' }],
      {
        addGenerationPrompt: true,
      },
    );
    expect(phi3.encode(prompt)).toEqual([32010, 4002, 29581, 278, 14156, 8720, 4086, 29889, 32007, 32001]);
    expect(phi3.decode(phi3.encode(prompt))).toBe(
      '<|user|>Describe the Swift programming language.<|end|><|assistant|>',
    );
  });

  it('maps every added token to one id', () => {
    const added: [string, number][] = [
      ['<|endoftext|>', 32000],
      ['<|assistant|>', 32001],
      ['<|placeholder1|>', 32002],
      ['<|placeholder4|>', 32005],
      ['<|system|>', 32006],
      ['<|end|>', 32007],
      ['<|placeholder5|>', 32008],
      ['<|placeholder6|>', 32009],
      ['<|user|>', 32010],
    ];
    for (const [token, id] of added) {
      expect(phi3.encode(token)).toEqual([id]);
      expect(phi3.tokenToId(token)).toBe(id);
      expect(phi3.idToToken(id)).toBe(token);
      expect(phi3.isSpecial(id)).toBe(true);
    }
    expect(phi3.encode('a<|end|>b')).toEqual([263, 32007, 29890]);
  });

  it('has the Phi-3 special ids and a padded vocabulary', () => {
    expect(phi3.vocabSize).toBe(PHI3_VOCAB_SIZE);
    expect(phi3.specialIds).toEqual({ bos: 1, eos: 32000, pad: 32000, unk: 0 });
    expect(phi3.stopIds).toEqual(PHI3_STOP_IDS);
    expect(phi3.idToToken(32011)).toBeUndefined();
    expect(phi3.decode([15043, 32040, 3186])).toBe('Hello world');
    expect(phi3.decode([])).toBe('');
  });

  it.each(ROUND_TRIP)('round-trips %j (byte fallback for unknown characters)', (text) => {
    const ids = phi3.encode(text, { addBos: true });
    expect(phi3.decode(ids, { skipSpecial: true })).toBe(text);
    expect(legacy.decode(legacy.encode(text), { skipSpecial: true })).toBe(text);
  });

  it('skips special tokens on request', () => {
    const ids = phi3.encode(applyPhi3ChatTemplate([{ role: 'user', content: 'Hi' }]), { addBos: true });
    expect(ids[0]).toBe(1);
    expect(phi3.decode(ids, { skipSpecial: true })).toBe('Hi');
  });

  it('saves a tokenizer.json that loadTokenizer reads back identically', () => {
    phi3.save(dir);
    const loaded = loadTokenizer(dir);
    expect(loaded.specialIds).toEqual(phi3.specialIds);
    for (const text of [...ROUND_TRIP, applyPhi3ChatTemplate([{ role: 'system', content: 'Be brief.' }])]) {
      expect(loaded.encode(text, { addBos: true })).toEqual(phi3.encode(text, { addBos: true }));
    }
  });

  it('encodes word by word (cached) exactly as BPE over whole segments', async () => {
    const slow = new HfTokenizer(await phi3TokenizerJson(), { wordCache: false });
    const text = [...ROUND_TRIP, '           grabbed  x', '<|user|>\nHi  there<|end|>\n', 'a▁b ▁▁c'].join(
      ' \n ',
    );
    expect(phi3.encode(text)).toEqual(slow.encode(text));
  });

  it('writes merges in the order of the Llama-2 merges list', async () => {
    const json = await phi3TokenizerJson();
    expect(json.model.merges.slice(0, 3)).toEqual(['▁ t', 'e r', 'i n']);
    expect(json.model.merges).toHaveLength(61249);
  });
});

describe('applyPhi3ChatTemplate', () => {
  it('renders the Phi-3.5 format', () => {
    const messages = [
      { role: 'system', content: 'You are helpful.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Bye' },
    ] as const;
    expect(applyPhi3ChatTemplate(messages, { addGenerationPrompt: true })).toBe(
      '<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n' +
        '<|user|>\nBye<|end|>\n<|assistant|>\n',
    );
    expect(applyPhi3ChatTemplate(messages.slice(1, 3), { addGenerationPrompt: false })).toBe(
      '<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|endoftext|>',
    );
  });

  it('drops an empty system message and skips roles the template does not name', () => {
    expect(
      applyPhi3ChatTemplate([
        { role: 'system', content: '' },
        { role: 'user', content: 'x' },
      ]),
    ).toBe('<|user|>\nx<|end|>\n<|assistant|>\n');
    expect(applyPhi3ChatTemplate([{ role: 'tool' as 'user', content: 'x' }])).toBe('<|assistant|>\n');
  });
});
