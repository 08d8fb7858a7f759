// The training loop of `grin train` as named steps: prepare and place (loop-prepare.ts,
// loop-place.ts), step (loop-step.ts), evaluate, checkpoint and report (loop-evaluate.ts,
// loop-checkpoint.ts, loop-report.ts), after the run's lock, checkpoint recovery and resume-config
// check here. Every draw comes from checkpointed Philox streams, so a resumed run reproduces the
// uninterrupted one bit for bit on CPU.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts
import { join } from 'node:path';
import { idsTensor, type Tokenizer } from '@grin-moe/model-grin';
import { prepareOutputDir } from '../output-path.js';
import { listCheckpoints, recoverCheckpoints } from './checkpoints.js';
import type { TrainConfig } from './config.js';
import type { StepParallel } from './data-parallel.js';
import { saveCheckpoint } from './loop-checkpoint.js';
import { evaluate, evaluateIfDue, validate } from './loop-evaluate.js';
import { prepareRun } from './loop-prepare.js';
import { finishReport, reportStep, stepRecord } from './loop-report.js';
import { elapsedSeconds, TrainingError, type TrainRun, type TrainSummary } from './loop-state.js';
import { trainStep } from './loop-step.js';
import type { TrainingData } from './prepare.js';
import { ProgressBar } from './progress.js';
import { configConflicts, readSavedConfig } from './resume-config.js';
import { acquireRunLock } from './run-lock.js';

export interface TrainOptions {
  resume: boolean;
  /** A rank of a `grin train --dp N --pp M` run (default: one process). */
  parallel?: StepParallel;
  progress?: ProgressBar;
  /** For tests: stop after this step as if killed (no final checkpoint). */
  abortAfterStep?: number;
}

export async function runTraining(config: TrainConfig, options: TrainOptions): Promise<TrainSummary> {
  if (options.parallel && !options.parallel.isRoot) return trainLocked(config, options);
  const progress = options.progress ?? new ProgressBar();
  const log = (line: string) => progress.log(line);
  prepareOutputDir(config.run.out, 'train --out');
  const runDir = prepareOutputDir(join(config.run.out, config.run.name), 'train run directory');
  const lock = acquireRunLock(runDir, log);
  try {
    recoverCheckpoints(runDir, log);
    if (options.resume) checkResumeConfig(runDir, config);
    return await trainLocked(config, { ...options, progress });
  } finally {
    lock.release();
  }
}

/** On resume the run's saved config.json must agree with `config` outside the resumable fields. */
function checkResumeConfig(runDir: string, config: TrainConfig): void {
  const saved = readSavedConfig(runDir);
  if (!saved) {
    if (listCheckpoints(runDir).complete.length)
      throw new TrainingError(
        `${join(runDir, 'config.json')} is missing, so the flags cannot be checked against the run; restore it to resume`,
      );
    return;
  }
  const conflicts = configConflicts(saved.config, config);
  if (conflicts.length)
    throw new TrainingError(
      `train --resume: the config differs from the run's ${saved.path}: ${conflicts.join('; ')}`,
    );
}

async function trainLocked(config: TrainConfig, options: TrainOptions): Promise<TrainSummary> {
  const run = await prepareRun(
    config,
    options.resume,
    options.parallel,
    options.progress ?? new ProgressBar(),
  );
  const { progress } = run;
  const steps = config.optim.steps;
  let stoppedEarly: string | null = null;
  while (run.step < steps) {
    const stepStart = performance.now();
    run.step++;
    const losses = await trainStep(run);
    if (!Number.isFinite(losses.loss)) {
      stoppedEarly = nonFiniteStop(run, losses.loss);
      progress.log(stoppedEarly);
      run.step--;
      break;
    }
    run.tokensSeen += run.tokensPerStep;
    const record = stepRecord(run, losses, (performance.now() - stepStart) / 1000);
    await evaluateIfDue(run, record);
    reportStep(run, record);
    if (options.abortAfterStep !== undefined && run.step >= options.abortAfterStep)
      return abandon(run.runDir, run.step);
    if (run.step % config.checkpoint.every === 0 || run.step === steps) await saveCheckpoint(run);
    const overBudget = config.timeBudgetSeconds > 0 && elapsedSeconds(run) > config.timeBudgetSeconds;
    if ((await run.par.any(overBudget)) && run.step < steps) {
      stoppedEarly = `time budget of ${config.timeBudgetSeconds}s reached at step ${run.step} of ${steps}`;
      progress.log(stoppedEarly);
      break;
    }
  }
  progress.done();
  if (stoppedEarly?.startsWith('time budget')) {
    run.lastValLoss = await validate(run);
    await saveCheckpoint(run);
  }
  if (!Number.isFinite(run.lastValLoss) && run.lastGood !== null && !stoppedEarly)
    run.lastValLoss = await validate(run);
  return finishReport(run, stoppedEarly);
}

function nonFiniteStop(run: TrainRun, loss: number): string {
  const where =
    run.lastGood === null
      ? 'No checkpoint was written yet.'
      : `The last good checkpoint is ${join(run.runDir, 'checkpoints', `step-${run.lastGood}`)}.`;
  return `step ${run.step}: the loss is ${loss}; stopped. ${where}`;
}

function abandon(runDir: string, step: number): TrainSummary {
  return {
    runDir,
    steps: step,
    finalValLoss: Number.NaN,
    unigramCrossEntropy: Number.NaN,
    unigramTrainEntropy: Number.NaN,
    improvement: Number.NaN,
    stoppedEarly: 'aborted (test)',
  };
}

export type { Tokenizer, TrainingData, TrainSummary };
export { evaluate, idsTensor, TrainingError };
