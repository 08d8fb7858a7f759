// Checkpoints of a run: runs/NAME/checkpoints/step-N/ holds model.safetensors + config.json (so
// the directory loads with `grin generate`), tokenizer.json, optimizer.safetensors, state.json and,
// written last, manifest.json (every file with its size: what makes a checkpoint complete). A
// checkpoint is written into a temporary directory, fsynced, then renamed into place; a re-save of
// a step moves the complete copy aside before the new one goes in, and a failed write removes its
// partial directory. Leftovers of a crash are recovered at the next start (recoverCheckpoints).
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts src/train/checkpoints.test.ts
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { type GrinModel, saveModel } from '@grin-moe/model-grin';
import {
  type GeneratorState,
  loadTensors,
  type OptimizerState,
  saveTensors,
  type Tensor,
} from '@grin-moe/tensor';
import { checkpointProblem, writeManifest } from './checkpoint-manifest.js';
import { readJsonFile } from './json-file.js';

export class CheckpointWriteError extends Error {}

export interface RunState {
  step: number;
  tokensSeen: number;
  generator: GeneratorState;
  /** Wall time spent training before this checkpoint (seconds), for tokens/s and ETA after resume. */
  elapsedSeconds: number;
  bestValLoss: number | null;
  complete: true;
}

export function checkpointDir(runDir: string, step: number): string {
  return join(runDir, 'checkpoints', `step-${step}`);
}

function fsyncPath(path: string, directory = false): void {
  let fd: number | null = null;
  try {
    fd = openSync(path, directory ? 'r' : 'r+');
    fsyncSync(fd);
  } catch {
    // Directories cannot be fsynced on every platform; the rename is still atomic.
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

export function writeCheckpoint(
  runDir: string,
  parts: {
    model: GrinModel;
    /** AdamW, or a pipeline run's state gathered over its stages (pipeline-gather.ts). */
    optimizer: { lr: number; stateDict(): OptimizerState };
    saveTokenizer: (dir: string) => void;
    state: Omit<RunState, 'complete'>;
  },
  keep: number,
): string {
  const root = join(runDir, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const step = parts.state.step;
  const final = checkpointDir(runDir, step);
  const tmp = join(root, `.step-${step}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    mkdirSync(tmp);
    saveModel(tmp, parts.model, { dtype: 'f32' });
    parts.saveTokenizer(tmp);
    const { step: optimizerStep, tensors } = parts.optimizer.stateDict();
    saveTensors(join(tmp, 'optimizer.safetensors'), tensors, {
      step: String(optimizerStep),
      lr: String(parts.optimizer.lr),
    });
    writeFileSync(
      join(tmp, 'state.json'),
      `${JSON.stringify({ ...parts.state, complete: true }, null, 2)}\n`,
    );
    for (const f of readdirSync(tmp)) fsyncPath(join(tmp, f));
    // The manifest last: its presence (with every size matching) marks the checkpoint complete.
    writeManifest(tmp, step);
    fsyncPath(join(tmp, 'manifest.json'));
    fsyncPath(tmp, true);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    const previous = completeCheckpoints(runDir).filter((s) => s !== step);
    throw new CheckpointWriteError(
      `checkpoint ${final}: writing failed (${(error as Error).message}); the partial directory was removed; ${previous.length ? `the last complete checkpoint is ${checkpointDir(runDir, previous.at(-1)!)}` : 'no complete checkpoint exists yet'}`,
    );
  }
  // A re-save of the same step keeps the complete copy until the new one is in place.
  const aside = join(root, `.step-${step}.old-${process.pid}`);
  const replacing = existsSync(final);
  if (replacing) renameSync(final, aside);
  renameSync(tmp, final);
  fsyncPath(root, true);
  if (replacing) rmSync(aside, { recursive: true, force: true });
  prune(runDir, keep);
  return final;
}

export interface CheckpointListing {
  /** Steps of the complete checkpoints, oldest first. */
  complete: number[];
  /** step-N directories that are not complete, with what is wrong. */
  damaged: { step: number; problem: string }[];
}

export function listCheckpoints(runDir: string): CheckpointListing {
  const root = join(runDir, 'checkpoints');
  const listing: CheckpointListing = { complete: [], damaged: [] };
  if (!existsSync(root)) return listing;
  for (const name of readdirSync(root)) {
    const m = /^step-(\d+)$/.exec(name);
    if (!m) continue;
    const problem = checkpointProblem(join(root, name));
    if (problem === null) listing.complete.push(Number(m[1]));
    else listing.damaged.push({ step: Number(m[1]), problem });
  }
  listing.complete.sort((a, b) => a - b);
  listing.damaged.sort((a, b) => a.step - b.step);
  return listing;
}

/** Steps of the complete checkpoints, oldest first. */
export function completeCheckpoints(runDir: string): number[] {
  return listCheckpoints(runDir).complete;
}

/**
 * After a crash: a complete temporary or set-aside copy (.step-N.tmp-PID, .step-N.old-PID) replaces
 * a missing or incomplete step-N; every other leftover is removed. Call it holding the run lock.
 */
export function recoverCheckpoints(runDir: string, log: (line: string) => void): void {
  const root = join(runDir, 'checkpoints');
  if (!existsSync(root)) return;
  // Newer writes (.tmp) before set-aside copies (.old), so the newest complete copy wins.
  const leftovers = readdirSync(root)
    .map((name) => ({ name, m: /^\.step-(\d+)\.(tmp|old)-\d+$/.exec(name) }))
    .filter((l) => l.m !== null)
    .sort((a, b) => (a.m![2] === b.m![2] ? 0 : a.m![2] === 'tmp' ? -1 : 1));
  for (const { name, m } of leftovers) {
    const path = join(root, name);
    const final = join(root, `step-${m![1]}`);
    if (checkpointProblem(path) === null && (!existsSync(final) || checkpointProblem(final) !== null)) {
      rmSync(final, { recursive: true, force: true });
      renameSync(path, final);
      fsyncPath(root, true);
      log(`${final}: restored from the complete copy ${name} left by an interrupted save`);
    } else {
      rmSync(path, { recursive: true, force: true });
    }
  }
}

function prune(runDir: string, keep: number): void {
  const steps = completeCheckpoints(runDir);
  for (const step of steps.slice(0, Math.max(0, steps.length - keep)))
    rmSync(checkpointDir(runDir, step), { recursive: true, force: true });
}

export function readRunState(dir: string): RunState {
  const path = join(dir, 'state.json');
  const state = readJsonFile(path) as RunState;
  if (state?.complete !== true || !Number.isInteger(state.step))
    throw new Error(
      `${path}: not a complete checkpoint state (expected "complete": true and an integer "step")`,
    );
  return state;
}

export function readOptimizerState(dir: string): { step: number; tensors: Record<string, Tensor> } {
  const path = join(dir, 'optimizer.safetensors');
  const tensors = loadTensors(path);
  const state = readRunState(dir);
  return { step: state.step, tensors };
}

/** A model directory, or a run directory whose newest complete checkpoint is used. */
export function resolveModelDir(dir: string): string {
  if (!existsSync(dir)) throw new Error(`${dir}: no such directory`);
  if (!statSync(dir).isDirectory())
    throw new Error(`${dir}: is a file; expected a model directory or a run directory`);
  if (
    existsSync(join(dir, 'config.json')) &&
    (existsSync(join(dir, 'model.safetensors')) || existsSync(join(dir, 'model.safetensors.index.json')))
  ) {
    return dir;
  }
  const { complete, damaged } = listCheckpoints(dir);
  if (complete.length) return checkpointDir(dir, complete.at(-1)!);
  const why = damaged.length
    ? `; its checkpoints are incomplete (${damaged.map((d) => `step-${d.step}: ${d.problem}`).join('; ')})`
    : '';
  throw new Error(
    `${dir}: neither a model directory (config.json + model.safetensors) nor a run directory with a complete checkpoint${why}`,
  );
}
