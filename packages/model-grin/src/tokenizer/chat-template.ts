// Chat prompts rendered from the checkpoint's own Jinja chat template (tokenizer_config.json's
// chat_template, or chat_template.jinja beside it) with @huggingface/jinja, given what
// transformers' apply_chat_template passes: messages, add_generation_prompt and the special
// tokens (bos_token, eos_token, ...) as strings; trim_blocks and lstrip_blocks as transformers sets.
// Test: cd packages/model-grin && npx vitest run src/tokenizer/chat-template
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import type { TokenizerConfigJson } from './types.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

const SPECIAL_TOKEN_KEYS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
] as const;

/** The special tokens of a tokenizer_config.json as strings (it may hold AddedToken objects). */
export function specialTokenStrings(config: TokenizerConfigJson): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const value = config[key] as string | { content?: string } | null | undefined;
    const text = typeof value === 'string' ? value : value?.content;
    if (typeof text === 'string') out[key] = text;
  }
  return out;
}

/**
 * The chat template of a model directory: chat_template.jinja (transformers 4.43+ saves it there),
 * else tokenizer_config.json's chat_template (a string, or a list of {name, template}: 'default').
 */
export function chatTemplateOf(config: TokenizerConfigJson, modelDir?: string): string | null {
  if (modelDir && existsSync(join(modelDir, 'chat_template.jinja')))
    return readFileSync(join(modelDir, 'chat_template.jinja'), 'utf8');
  const template = config.chat_template as string | { name: string; template: string }[] | undefined;
  if (typeof template === 'string') return template;
  if (Array.isArray(template)) return template.find((t) => t.name === 'default')?.template ?? null;
  return null;
}

export interface RenderChatOptions {
  addGenerationPrompt?: boolean;
  /** bos_token, eos_token, ... as the template sees them. */
  specialTokens?: Record<string, string>;
  /** Where the template came from, for error messages. */
  source?: string;
}

export function renderChatTemplate(
  template: string,
  messages: readonly ChatMessage[],
  { addGenerationPrompt = true, specialTokens = {}, source = 'chat_template' }: RenderChatOptions = {},
): string {
  let compiled: Template;
  try {
    compiled = new Template(template);
  } catch (error) {
    throw new Error(`${source}: the chat template does not parse (${(error as Error).message})`);
  }
  try {
    return compiled.render({
      ...specialTokens,
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: addGenerationPrompt,
    });
  } catch (error) {
    throw new Error(`${source}: rendering the chat template failed: ${(error as Error).message}`);
  }
}
