// `grin generate --chat [--system TEXT]`: the prompt wrapped in the checkpoint's own chat template
// (tokenizer_config.json's chat_template or chat_template.jinja), rendered as transformers'
// apply_chat_template would, with the generation prompt. The caller encodes it without an extra
// BOS, as transformers does (a template that wants one writes {{ bos_token }} itself).
// Test: cd apps/trainer && npx vitest run src/model-source
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ChatMessage,
  chatTemplateOf,
  renderChatTemplate,
  specialTokenStrings,
  type TokenizerConfigJson,
} from '@grin-moe/model-grin';
import { CliError } from './args.js';

export function chatPrompt(dir: string, prompt: string, system?: string): string {
  const path = join(dir, 'tokenizer_config.json');
  let config: TokenizerConfigJson = {};
  try {
    if (existsSync(path)) config = JSON.parse(readFileSync(path, 'utf8')) as TokenizerConfigJson;
  } catch (error) {
    throw new CliError(`generate --chat: ${path}: not valid JSON (${(error as Error).message})`);
  }
  const template = chatTemplateOf(config, dir);
  if (!template)
    throw new CliError(
      `generate --chat: ${dir} has no chat template (chat_template in tokenizer_config.json, or chat_template.jinja); drop --chat for plain continuation`,
    );
  const messages: ChatMessage[] = [
    ...(system !== undefined ? [{ role: 'system' as const, content: system }] : []),
    { role: 'user', content: prompt },
  ];
  try {
    return renderChatTemplate(template, messages, {
      addGenerationPrompt: true,
      specialTokens: specialTokenStrings(config),
      source: path,
    });
  } catch (error) {
    throw new CliError(`generate --chat: ${(error as Error).message}`);
  }
}
