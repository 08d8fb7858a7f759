// Checkpoints of a run: runs/NAME/checkpoints/step-N/ holds model.safetensors + config.json (so
// the directory loads with `grin generate`), tokenizer.json, optimizer.safetensors and state.json.
// A checkpoint is written into a temporary directory, every file fsynced, then renamed into place
// and the parent fsynced: a crash leaves either the old set or the new one, never a torn one.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { type GrinModel, saveModel } from '@grin-moe/model-grin';
import { type AdamW, type GeneratorState, loadTensors, saveTensors, type Tensor } from '@grin-moe/tensor';

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
    optimizer: AdamW;
    saveTokenizer: (dir: string) => void;
    state: Omit<RunState, 'complete'>;
  },
  keep: number,
): string {
  const root = join(runDir, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const final = checkpointDir(runDir, parts.state.step);
  const tmp = join(root, `.step-${parts.state.step}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  saveModel(tmp, parts.model, { dtype: 'f32' });
  parts.saveTokenizer(tmp);
  const { step, tensors } = parts.optimizer.stateDict();
  saveTensors(join(tmp, 'optimizer.safetensors'), tensors, {
    step: String(step),
    lr: String(parts.optimizer.lr),
  });
  // state.json last: its presence marks the checkpoint complete.
  writeFileSync(join(tmp, 'state.json'), `${JSON.stringify({ ...parts.state, complete: true }, null, 2)}\n`);
  for (const f of readdirSync(tmp)) fsyncPath(join(tmp, f));
  fsyncPath(tmp, true);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncPath(root, true);
  prune(runDir, keep);
  return final;
}

/** Steps of the complete checkpoints, oldest first. */
export function completeCheckpoints(runDir: string): number[] {
  const root = join(runDir, 'checkpoints');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((name) => /^step-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(join(root, m[0], 'state.json')))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

function prune(runDir: string, keep: number): void {
  const steps = completeCheckpoints(runDir);
  for (const step of steps.slice(0, Math.max(0, steps.length - keep)))
    rmSync(checkpointDir(runDir, step), { recursive: true, force: true });
  // leftovers of a crash mid-write
  for (const name of readdirSync(join(runDir, 'checkpoints'))) {
    if (name.startsWith('.step-') && !name.endsWith(`.tmp-${process.pid}`))
      rmSync(join(runDir, 'checkpoints', name), { recursive: true, force: true });
  }
}

export function readRunState(dir: string): RunState {
  const path = join(dir, 'state.json');
  const state = JSON.parse(readFileSync(path, 'utf8')) as RunState;
  if (state.complete !== true || !Number.isInteger(state.step))
    throw new Error(`${path}: not a complete checkpoint state`);
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
  if (
    existsSync(join(dir, 'config.json')) &&
    (existsSync(join(dir, 'model.safetensors')) || existsSync(join(dir, 'model.safetensors.index.json')))
  ) {
    return dir;
  }
  const steps = existsSync(join(dir, 'checkpoints')) ? completeCheckpoints(dir) : [];
  if (steps.length) return checkpointDir(dir, steps[steps.length - 1]!);
  throw new Error(
    `${dir}: neither a model directory (config.json + model.safetensors) nor a run directory with a complete checkpoint`,
  );
}
