// Chat templates rendered by @huggingface/jinja against apply_chat_template outputs of transformers
// for the Phi-3.5-MoE and Zephyr templates (fixtures/chat-templates/cases.json, every case dumped by
// tools/reference/chat_template_dump.py with transformers 5.17; each case names its source), plus where a
// template is found and the errors for a bad one. Run: cd packages/model-grin && npx vitest run src/tokenizer/chat-template
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type ChatMessage,
  chatTemplateOf,
  renderChatTemplate,
  specialTokenStrings,
} from './chat-template.js';
import { applyPhi3ChatTemplate, PHI3_CHAT_TEMPLATE } from './phi3.js';

interface Fixture {
  templates: Record<string, { chat_template: string; special_tokens: Record<string, string> }>;
  conversations: Record<string, ChatMessage[]>;
  cases: {
    template: string;
    conversation: string;
    add_generation_prompt: boolean;
    expected: string;
    provenance: string;
  }[];
}
const fixture = JSON.parse(
  readFileSync(join(import.meta.dirname, '../../fixtures/chat-templates/cases.json'), 'utf8'),
) as Fixture;

const dir = mkdtempSync(join(tmpdir(), 'grin-chat-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('renderChatTemplate matches apply_chat_template', () => {
  it.each(fixture.cases.map((c) => [`${c.template} / ${c.conversation} (${c.provenance})`, c] as const))(
    '%s',
    (_, c) => {
      const template = fixture.templates[c.template]!;
      const text = renderChatTemplate(template.chat_template, fixture.conversations[c.conversation]!, {
        addGenerationPrompt: c.add_generation_prompt,
        specialTokens: template.special_tokens,
      });
      expect(text).toBe(c.expected);
    },
  );
  it('covers both templates, with and without the generation prompt', () => {
    expect(new Set(fixture.cases.map((c) => c.template)).size).toBe(2);
    expect(new Set(fixture.cases.map((c) => c.add_generation_prompt))).toEqual(new Set([true, false]));
    // every expected string is transformers' own output, none written by hand
    for (const c of fixture.cases)
      expect(c.provenance).toMatch(/^transformers \d+\.\d+\.\d+ apply_chat_template$/);
    expect(fixture.templates['phi-3.5-moe-instruct']!.chat_template).toBe(PHI3_CHAT_TEMPLATE);
  });
  it('applyPhi3ChatTemplate is the Phi-3.5 template rendered', () => {
    const c = fixture.cases.find((x) => x.template === 'phi-3.5-moe-instruct' && !x.add_generation_prompt)!;
    expect(
      applyPhi3ChatTemplate(fixture.conversations[c.conversation]!, { addGenerationPrompt: false }),
    ).toBe(c.expected);
  });
});

describe('finding a template', () => {
  it('reads a string, a named list, or chat_template.jinja beside the config', () => {
    expect(chatTemplateOf({ chat_template: 'A' })).toBe('A');
    expect(
      chatTemplateOf({
        chat_template: [
          { name: 'tool_use', template: 'T' },
          { name: 'default', template: 'D' },
        ] as unknown as string,
      }),
    ).toBe('D');
    expect(chatTemplateOf({})).toBeNull();
    writeFileSync(join(dir, 'chat_template.jinja'), 'J');
    expect(chatTemplateOf({ chat_template: 'A' }, dir)).toBe('J');
  });
  it('takes special tokens given as AddedToken objects', () => {
    expect(
      specialTokenStrings({
        bos_token: { content: '<s>' } as unknown as string,
        eos_token: '</s>',
        pad_token: null,
      }),
    ).toEqual({ bos_token: '<s>', eos_token: '</s>' });
  });
  it('names the source on a template that does not parse or raises', () => {
    expect(() => renderChatTemplate('{% if %}', [], { source: 'm/tokenizer_config.json' })).toThrow(
      /^m\/tokenizer_config\.json: the chat template does not parse/,
    );
    expect(() =>
      renderChatTemplate("{{ raise_exception('Conversation roles must alternate') }}", [], { source: 'x' }),
    ).toThrow('x: rendering the chat template failed: Conversation roles must alternate');
  });
});
