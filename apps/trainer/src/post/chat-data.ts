// Post-training data: chat records {"messages": [{role, content}, ...]} for `grin sft` and
// preference records {"prompt", "chosen", "rejected"} (strings or message lists) for `grin dpo`,
// rendered with the model's own chat template and tokenized with an assistant-token mask taken from
// the template's turn boundaries: each assistant turn starts where the conversation rendered up to it
// with the generation prompt ends, and stops where the renderings with and without the next turn
// part ways (its content and the template's end-of-turn text). Boundaries are placed on tokens, and
// a template whose prefixes do not tokenize as prefixes of the whole is refused, not guessed.
// Test: cd apps/trainer && npx vitest run src/post/chat-data
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ChatMessage,
  chatTemplateOf,
  renderChatTemplate,
  specialTokenStrings,
  type Tokenizer,
  type TokenizerConfigJson,
} from '@grin-moe/model-grin';

export class ChatDataError extends Error {}

/**
 * The template of models that ship none (the Brown model `grin train` writes): plain "Question:" /
 * "Answer:" turns, the answer closed by eos_token. Distinct first words per role keep the turn
 * boundaries on whole tokens. SFT and DPO runs write it beside their checkpoints (chat_template.jinja).
 */
export const PLAIN_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'user' %}{{ 'Question: ' + message['content'] + '\n' }}" +
  "{% elif message['role'] == 'assistant' %}{{ 'Answer: ' + message['content'] + eos_token + '\n' }}" +
  "{% else %}{{ message['content'] + '\n' }}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'Answer:' }}{% endif %}";

export interface ChatTemplate {
  template: string;
  specialTokens: Record<string, string>;
  /** Where it came from: the model's tokenizer_config.json / chat_template.jinja, or 'built-in plain template'. */
  source: string;
}

/** The model directory's chat template, or the plain built-in one when it has none. */
export function chatTemplateFor(modelDir: string, tokenizer: Tokenizer): ChatTemplate {
  const path = join(modelDir, 'tokenizer_config.json');
  let config: TokenizerConfigJson = {};
  if (existsSync(path)) {
    try {
      config = JSON.parse(readFileSync(path, 'utf8')) as TokenizerConfigJson;
    } catch (error) {
      throw new ChatDataError(`${path}: not valid JSON (${(error as Error).message})`);
    }
  }
  const specialTokens = specialTokenStrings(config);
  const eos = tokenizer.specialIds.eos;
  if (specialTokens.eos_token === undefined && eos !== undefined)
    specialTokens.eos_token = tokenizer.idToToken(eos) ?? '';
  const own = chatTemplateOf(config, modelDir);
  return own
    ? {
        template: own,
        specialTokens,
        source: existsSync(join(modelDir, 'chat_template.jinja'))
          ? join(modelDir, 'chat_template.jinja')
          : path,
      }
    : { template: PLAIN_CHAT_TEMPLATE, specialTokens, source: 'built-in plain template' };
}

/** Token ids and, per token, whether it is an assistant token (the tokens the loss covers). */
export interface MaskedTokens {
  ids: number[];
  assistant: boolean[];
}

function render(template: ChatTemplate, messages: readonly ChatMessage[], generationPrompt: boolean): string {
  return renderChatTemplate(template.template, messages, {
    addGenerationPrompt: generationPrompt,
    specialTokens: template.specialTokens,
    source: template.source,
  });
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/**
 * Renders and tokenizes a conversation; assistant messages at index >= `firstLearned` are marked
 * (DPO marks only the completion, never the prompt's turns). No BOS is added: a template that
 * wants one writes it, as transformers' apply_chat_template does.
 */
export function tokenizeConversation(
  messages: readonly ChatMessage[],
  template: ChatTemplate,
  tokenizer: Tokenizer,
  where: string,
  firstLearned = 0,
): MaskedTokens {
  const ids = tokenizer.encode(render(template, messages, false));
  const assistant = new Array<boolean>(ids.length).fill(false);
  messages.forEach((message, i) => {
    if (message.role !== 'assistant' || i < firstLearned) return;
    const before = tokenizer.encode(render(template, messages.slice(0, i), true));
    if (commonPrefix(before, ids) !== before.length)
      throw new ChatDataError(
        `${where}: the chat template (${template.source}) rendered up to message ${i} with the generation prompt does not tokenize as a prefix of the whole conversation, so the start of assistant turn ${i} cannot be placed on a token`,
      );
    const upTo = messages.slice(0, i + 1);
    const end = Math.min(
      commonPrefix(tokenizer.encode(render(template, upTo, false)), ids),
      commonPrefix(tokenizer.encode(render(template, upTo, true)), ids),
    );
    if (end <= before.length)
      throw new ChatDataError(
        `${where}: assistant turn ${i} covers no token after the template's turn boundaries (${template.source}); is its content empty?`,
      );
    assistant.fill(true, before.length, end);
  });
  return { ids, assistant };
}

const ROLES = new Set(['system', 'user', 'assistant']);

function messagesOf(value: unknown, where: string, field: string): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0)
    throw new ChatDataError(`${where}: "${field}" must be a non-empty list of {"role", "content"}`);
  return value.map((m, i) => {
    const message = m as { role?: unknown; content?: unknown };
    if (typeof message?.role !== 'string' || !ROLES.has(message.role) || typeof message.content !== 'string')
      throw new ChatDataError(
        `${where}: ${field}[${i}] must be {"role": "system" | "user" | "assistant", "content": string}, got ${JSON.stringify(m).slice(0, 120)}`,
      );
    return { role: message.role as ChatMessage['role'], content: message.content };
  });
}

function jsonLines(path: string): { value: unknown; where: string }[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ChatDataError(
      `${path}: cannot read the data file (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
  const out: { value: unknown; where: string }[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    try {
      out.push({ value: JSON.parse(line), where });
    } catch (error) {
      throw new ChatDataError(`${where}: not valid JSON (${(error as Error).message})`);
    }
  });
  if (!out.length) throw new ChatDataError(`${path}: no records (one JSON object a line expected)`);
  return out;
}

export interface ChatRecord {
  messages: ChatMessage[];
  where: string;
}

/** `grin sft` data: one {"messages": [...]} a line, each with at least one assistant turn. */
export function readChatRecords(path: string): ChatRecord[] {
  return jsonLines(path).map(({ value, where }) => {
    const messages = messagesOf((value as { messages?: unknown })?.messages, where, 'messages');
    if (!messages.some((m) => m.role === 'assistant'))
      throw new ChatDataError(`${where}: the conversation has no assistant message, so nothing to learn`);
    return { messages, where };
  });
}

export interface PreferenceRecord {
  prompt: ChatMessage[];
  chosen: ChatMessage[];
  rejected: ChatMessage[];
  where: string;
}

/** `grin dpo` data: {"prompt", "chosen", "rejected"}; a string prompt is a user turn, a string answer an assistant turn. */
export function readPreferenceRecords(path: string): PreferenceRecord[] {
  return jsonLines(path).map(({ value, where }) => {
    const record = value as Record<string, unknown>;
    const side = (field: string, role: ChatMessage['role']): ChatMessage[] => {
      const v = record?.[field];
      if (typeof v === 'string') return [{ role, content: v }];
      if (v === undefined)
        throw new ChatDataError(
          `${where}: missing "${field}"; each line needs "prompt", "chosen" and "rejected"`,
        );
      return messagesOf(v, where, field);
    };
    return {
      prompt: side('prompt', 'user'),
      chosen: side('chosen', 'assistant'),
      rejected: side('rejected', 'assistant'),
      where,
    };
  });
}
