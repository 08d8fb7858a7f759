// What `--model` / `--init-from` name, as a local model directory: a directory or run directory
// as before (resolveModelDir), or a Hugging Face Hub id `ORG/NAME[@revision]` fetched into the
// shared HF cache by @grin-moe/hub. For a Hub id the memory estimate runs on config.json alone,
// before any weights are downloaded, so a model too big for this machine is refused at once.
// Test: cd apps/trainer && npx vitest run src/model-source
import { existsSync } from 'node:fs';
import { fetchModel, HubError, looksLikeRepoId } from '@grin-moe/hub';
import { assertFitsInHostMemory, ConfigError, loadConfig, type ModelDType } from '@grin-moe/model-grin';
import { CliError } from './args.js';
import { resolveModelDir } from './train/checkpoints.js';

export interface ModelSourceOptions {
  /** The command, for messages: 'generate', 'eval ppl', 'train --init-from'. */
  command: string;
  /** The dtype the model will be loaded in on CPU, for the memory estimate. */
  dtype?: ModelDType;
  /** Skip the estimate (a GPU load, or --skip-memory-check). */
  skipMemoryCheck?: boolean;
  /** false: config and tokenizer files only. */
  weights?: boolean;
}

export function isHubModelId(given: string): boolean {
  return !existsSync(given) && looksLikeRepoId(given);
}

/** The local directory holding config.json, the tokenizer and the weights. */
export async function resolveModelSource(given: string, options: ModelSourceOptions): Promise<string> {
  if (!isHubModelId(given)) {
    try {
      return resolveModelDir(given);
    } catch (error) {
      const hint = existsSync(given) ? '' : ' (nor a Hub id ORG/NAME[@revision])';
      throw new CliError(`${options.command}: ${(error as Error).message}${hint}`);
    }
  }
  try {
    const { dir } = await fetchModel(given, {
      weights: options.weights,
      beforeWeights: (snapshot) => {
        if (!options.skipMemoryCheck)
          assertFitsInHostMemory(loadConfig(snapshot), { dtype: options.dtype ?? 'f32', source: given });
      },
    });
    return dir;
  } catch (error) {
    if (error instanceof HubError || error instanceof ConfigError)
      throw new CliError(`${options.command}: ${error.message}`);
    throw error;
  }
}

/** `train --init-from ORG/NAME`: fetched (memory-checked first) and replaced by its snapshot directory. */
export async function resolveInitFrom<T extends { data: { initFrom: string | null } }>(
  config: T,
): Promise<T> {
  const given = config.data.initFrom;
  if (!given || !isHubModelId(given)) return config;
  const dir = await resolveModelSource(given, { command: 'train --init-from', dtype: 'f32' });
  return { ...config, data: { ...config.data, initFrom: dir } };
}
