// The state one `grin train` run carries between the named steps of loop.ts (prepare, place, step,
// evaluate, checkpoint, report): what loop-prepare.ts builds and the other loop-*.ts files read and
// advance. Counters live here so a checkpoint saves exactly what the loop has reached.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts
import type * as T from '@grin-moe/tensor';
import type { TrainConfig } from './config.js';
import type { StepParallel } from './data-parallel.js';
import type { PlacedModel, SideStep } from './device.js';
import type { PipelineRun } from './pipeline-run.js';
import type { TrainingData } from './prepare.js';
import type { ProgressBar } from './progress.js';
import type { TensorParallelRun } from './tensor-parallel-rank.js';

export class TrainingError extends Error {}

export interface TrainSummary {
  runDir: string;
  steps: number;
  finalValLoss: number;
  unigramCrossEntropy: number;
  unigramTrainEntropy: number;
  improvement: number;
  stoppedEarly: string | null;
}

export interface TrainRun {
  config: TrainConfig;
  runDir: string;
  par: StepParallel;
  progress: ProgressBar;
  data: TrainingData;
  /** The parameters this rank trains (a pipeline stage: its own only; a TP rank: its shard). */
  placed: PlacedModel;
  /** Under --pp: this rank's stage (null otherwise). */
  pipeline: PipelineRun | null;
  /** Under --tp: this rank's groups and shard (null otherwise). */
  tensorParallel: TensorParallelRun | null;
  optimizer: T.AdamW;
  /** optim.overlap 'auto' on cuda in one process: where the optimizer step runs (null: inline). */
  sideStep: SideStep | null;
  schedule: (step: number) => number;
  generator: T.Generator;
  tokensPerStep: number;
  /** The step last completed (0 before the first). */
  step: number;
  tokensSeen: number;
  bestValLoss: number | null;
  lastValLoss: number;
  /** The step of the newest checkpoint on disk, for the message of a non-finite stop. */
  lastGood: number | null;
  /** Seconds trained before this process (from the resumed checkpoint). */
  elapsedBefore: number;
  /** performance.now() when this process started stepping. */
  started: number;
}

/** Training seconds over every process of the run, the resumed ones included. */
export function elapsedSeconds(run: TrainRun): number {
  return run.elapsedBefore + (performance.now() - run.started) / 1000;
}
