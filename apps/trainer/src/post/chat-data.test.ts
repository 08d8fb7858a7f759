// Assistant-token masks from the template's turn boundaries: with Phi-3.5's own template and
// tokenizer every assistant turn covers exactly its content and <|end|> (hand-derived), no
// user/system token is marked, DPO marks only the completion, and a template whose prefixes do not
// tokenize as prefixes is refused naming the turn. Also the JSONL readers' errors.
// Run: cd apps/trainer && npx vitest run src/post/chat-data
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChatMessage,
  PHI3_CHAT_TEMPLATE,
  PHI3_TOKENIZER_CONFIG,
  phi3Tokenizer,
  specialTokenStrings,
  type Tokenizer,
  trainBpe,
} from '@grin-moe/model-grin';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type ChatTemplate,
  PLAIN_CHAT_TEMPLATE,
  readChatRecords,
  readPreferenceRecords,
  tokenizeConversation,
} from './chat-data.js';

const conversation: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Name a genre.' },
  { role: 'assistant', content: 'News.' },
  { role: 'user', content: 'Another one?' },
  { role: 'assistant', content: 'Science fiction, of course.' },
];

/** The marked tokens as contiguous spans, each decoded. */
function spans(tokenizer: Tokenizer, ids: number[], assistant: boolean[]): string[] {
  const out: string[] = [];
  let start = -1;
  assistant.forEach((a, t) => {
    if (a && start < 0) start = t;
    if ((!a || t === assistant.length - 1) && start >= 0) {
      out.push(tokenizer.decode(ids.slice(start, a ? t + 1 : t)));
      start = -1;
    }
  });
  return out;
}

describe('Phi-3.5 template and tokenizer', () => {
  let tokenizer: Tokenizer;
  let template: ChatTemplate;
  beforeAll(async () => {
    tokenizer = await phi3Tokenizer();
    template = {
      template: PHI3_CHAT_TEMPLATE,
      specialTokens: specialTokenStrings(PHI3_TOKENIZER_CONFIG),
      source: 'Phi-3.5',
    };
  });

  // Phi-3.5's added tokens strip the whitespace after them (rstrip in its tokenizer.json), so a
  // turn's last token is <|end|> itself and no newline token follows a role tag.
  it('marks each assistant turn: its content and <|end|>, nothing else', () => {
    const { ids, assistant } = tokenizeConversation(conversation, template, tokenizer, 'test');
    expect(ids.length).toBe(assistant.length);
    expect(spans(tokenizer, ids, assistant)).toEqual(['News.<|end|>', 'Science fiction, of course.<|end|>']);
    // the unmarked tokens are the system and user turns, the role tags and the final <|endoftext|>
    const unmarked = tokenizer.decode(ids.filter((_, t) => !assistant[t]));
    expect(unmarked).toBe(
      '<|system|>Be brief.<|end|><|user|>Name a genre.<|end|><|assistant|><|user|>Another one?<|end|><|assistant|><|endoftext|>',
    );
  });

  it('DPO: only the completion after the prompt is marked', () => {
    const { ids, assistant } = tokenizeConversation(conversation, template, tokenizer, 'test', 3);
    expect(spans(tokenizer, ids, assistant)).toEqual(['Science fiction, of course.<|end|>']);
  });
});

describe('the plain built-in template (models without one)', () => {
  const tokenizer = trainBpe(['Question: what genre is this?\nAnswer: It is news.', 'Answer: fiction.'], {
    vocabSize: 300,
  });
  const plain: ChatTemplate = {
    template: PLAIN_CHAT_TEMPLATE,
    specialTokens: { eos_token: '</s>' },
    source: 'plain',
  };

  it('marks the answer and its eos', () => {
    const messages: ChatMessage[] = conversation.slice(1);
    const { ids, assistant } = tokenizeConversation(messages, plain, tokenizer, 'test');
    expect(spans(tokenizer, ids, assistant).map((s) => s.trim())).toEqual([
      'News.</s>',
      'Science fiction, of course.</s>',
    ]);
    expect(tokenizer.decode(ids.filter((_, t) => !assistant[t])).replaceAll(' \n', '\n')).toBe(
      'Question: Name a genre.\nAnswer:Question: Another one?\nAnswer:',
    );
  });

  it('refuses a template whose generation prompt is not how it renders the assistant turn', () => {
    const bad = {
      ...plain,
      template: PLAIN_CHAT_TEMPLATE.replace("{{ 'Answer:' }}", "{{ 'Reply:' }}"),
      source: 'bad',
    };
    expect(() => tokenizeConversation(conversation.slice(1), bad, tokenizer, 'data.jsonl:3')).toThrow(
      'data.jsonl:3: the chat template (bad) rendered up to message 1 with the generation prompt does not tokenize as a prefix of the whole conversation',
    );
  });
});

describe('JSONL readers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grin-chat-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('read messages and preference records (strings or messages)', () => {
    const chat = readChatRecords(file('chat.jsonl', `${JSON.stringify({ messages: conversation })}\n\n`));
    expect(chat).toEqual([{ messages: conversation, where: `${dir}/chat.jsonl:1` }]);
    const [pair] = readPreferenceRecords(
      file(
        'pref.jsonl',
        `${JSON.stringify({ prompt: 'Q?', chosen: 'A.', rejected: [{ role: 'assistant', content: 'B.' }] })}\n`,
      ),
    );
    expect(pair).toMatchObject({
      prompt: [{ role: 'user', content: 'Q?' }],
      chosen: [{ role: 'assistant', content: 'A.' }],
      rejected: [{ role: 'assistant', content: 'B.' }],
    });
  });

  it.each([
    ['{"messages": []}', 'chat.jsonl:1: "messages" must be a non-empty list of {"role", "content"}'],
    [
      '{"messages": [{"role": "user", "content": "hi"}]}',
      'chat.jsonl:1: the conversation has no assistant message',
    ],
    [
      '{"messages": [{"role": "bot", "content": "hi"}]}',
      'chat.jsonl:1: messages[0] must be {"role": "system" | "user" | "assistant"',
    ],
    ['not json', 'chat.jsonl:1: not valid JSON'],
  ])('chat %s is refused', (line, message) => {
    expect(() => readChatRecords(file('chat.jsonl', `${line}\n`))).toThrow(message);
  });

  it('a preference record without "rejected" is refused', () => {
    expect(() => readPreferenceRecords(file('p.jsonl', '{"prompt": "q", "chosen": "a"}\n'))).toThrow(
      'p.jsonl:1: missing "rejected"',
    );
  });
});
