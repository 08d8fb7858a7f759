// The checkpoint a resume starts from: the newest complete one that loads (tokenizer, weights with
// the non-finite check, state.json, optimizer state) and whose model matches the run's config. A
// damaged newest checkpoint is named and the previous one is tried. Also the up-front check of an
// --init-from directory. Test: cd apps/trainer && npx vitest run src/train/checkpoints.test.ts
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  type GrinConfig,
  type GrinModel,
  loadConfig,
  loadModel,
  loadTokenizer,
  type Tokenizer,
} from '@grin-moe/model-grin';
import type { Tensor } from '@grin-moe/tensor';
import {
  checkpointDir,
  completeCheckpoints,
  type RunState,
  readOptimizerState,
  readRunState,
} from './checkpoints.js';
import type { TrainConfig } from './config.js';

export class ResumeError extends Error {}

export interface ResumePoint {
  dir: string;
  tokenizer: Tokenizer;
  model: GrinModel;
  state: RunState;
  optimizer: { step: number; tensors: Record<string, Tensor> };
}

/** Architecture fields of the run's config against the checkpoint's config.json. */
function shapeMismatches(config: TrainConfig, saved: GrinConfig): string[] {
  const m = config.model;
  const pairs: [string, unknown, string, unknown][] = [
    ['model.hiddenSize', m.hiddenSize, 'hidden_size', saved.hiddenSize],
    ['model.intermediateSize', m.intermediateSize, 'intermediate_size', saved.intermediateSize],
    ['model.numLayers', m.numLayers, 'num_hidden_layers', saved.numHiddenLayers],
    ['model.numHeads', m.numHeads, 'num_attention_heads', saved.numAttentionHeads],
    ['model.numKvHeads', m.numKvHeads, 'num_key_value_heads', saved.numKeyValueHeads],
    ['model.numExperts', m.numExperts, 'num_local_experts', saved.numLocalExperts],
    ['model.topK', m.topK, 'num_experts_per_tok', saved.numExpertsPerTok],
    ['model.router', m.router, 'router', saved.router],
  ];
  return pairs
    .filter(([, ours, , theirs]) => ours !== theirs)
    .map(
      ([field, ours, name, theirs]) =>
        `${field} is ${JSON.stringify(ours)} but ${name} is ${JSON.stringify(theirs)}`,
    );
}

function loadPoint(
  dir: string,
  config: TrainConfig,
  check: (model: GrinConfig, tokenizer: Tokenizer, dir: string) => void,
): ResumePoint {
  const modelConfig = loadConfig(dir);
  const mismatches = shapeMismatches(config, modelConfig);
  if (mismatches.length)
    throw new ResumeError(
      `${join(dir, 'config.json')} does not match the run's config: ${mismatches.join('; ')}`,
    );
  const tokenizer = loadTokenizer(dir);
  check(modelConfig, tokenizer, dir);
  const state = readRunState(dir);
  const optimizer = readOptimizerState(dir);
  const model = loadModel(dir, { dtype: 'f32' });
  return { dir, tokenizer, model, state, optimizer };
}

/**
 * Loads the newest complete checkpoint at or before `step`, falling back to older ones (with a
 * message) when one fails to load. A config mismatch is not damage: it stops at once.
 */
export function loadResumePoint(
  runDir: string,
  step: number,
  config: TrainConfig,
  check: (model: GrinConfig, tokenizer: Tokenizer, dir: string) => void,
  log: (line: string) => void,
): ResumePoint {
  const candidates = completeCheckpoints(runDir)
    .filter((s) => s <= step)
    .reverse();
  let firstError: Error | null = null;
  for (const [i, candidate] of candidates.entries()) {
    const dir = checkpointDir(runDir, candidate);
    try {
      return loadPoint(dir, config, check);
    } catch (error) {
      if (error instanceof ResumeError) throw error;
      firstError ??= error as Error;
      const next = candidates[i + 1];
      log(
        `${dir} cannot be resumed from (${(error as Error).message.split('\n')[0]}); ${next !== undefined ? `falling back to step-${next}` : 'no older complete checkpoint is left'}`,
      );
    }
  }
  throw firstError ?? new ResumeError(`${runDir}: no complete checkpoint at or before step ${step}`);
}

/** An --init-from directory must exist and be a directory before its tokenizer is looked for. */
export function checkInitFrom(dir: string): void {
  const what =
    'data.initFrom (--init-from) must be a GRIN / Phi-3.5-MoE model directory (config.json, model.safetensors, tokenizer.json)';
  if (!existsSync(dir)) throw new ResumeError(`${dir}: no such directory; ${what}`);
  if (!statSync(dir).isDirectory()) throw new ResumeError(`${dir}: is a file; ${what}`);
  if (!existsSync(join(dir, 'config.json')))
    throw new ResumeError(`${dir}: has no config.json, so it is not a model directory; ${what}`);
}
