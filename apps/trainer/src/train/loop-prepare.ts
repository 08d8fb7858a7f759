// The prepare step of `grin train` (after the run lock): the run directory's checkpoints checked
// against --resume, config.json written, data and model prepared and placed, and AdamW, the
// schedule and the Philox stream built fresh or restored from the newest complete checkpoint.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts src/train/run-integrity.test.ts
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as T from '@grin-moe/tensor';
import { listCheckpoints } from './checkpoints.js';
import type { TrainConfig } from './config.js';
import { type StepParallel, singleProcess } from './data-parallel.js';
import { cudaSideStep, PlacedModel, requireCuda } from './device.js';
import { writeFileAtomic } from './json-file.js';
import { placeModel } from './loop-place.js';
import { TrainingError, type TrainRun } from './loop-state.js';
import { truncateMetrics } from './metrics-file.js';
import { preparePipelineStage, stageOptimizerState } from './pipeline-run.js';
import { prepareData } from './prepare.js';
import type { ProgressBar } from './progress.js';
import { shardOptimizerState } from './tensor-parallel-optimizer.js';
import { prepareTensorParallelRank } from './tensor-parallel-rank.js';

export async function prepareRun(
  config: TrainConfig,
  resume: boolean,
  parallel: StepParallel | undefined,
  progress: ProgressBar,
): Promise<TrainRun> {
  const runDir = join(config.run.out, config.run.name);
  const newest = checkExisting(runDir, resume, progress);
  if (config.device === 'cuda') await requireCuda();
  const par = parallel ?? singleProcess;
  await par.ready(); // rank 0 has locked and recovered the run directory
  if (par.isRoot) writeFileAtomic(join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);

  const data = await prepareData(config, runDir, newest, resume, progress);
  const whole = placeModel(config, data, progress);
  // A pipeline stage keeps only its own parameters (on the CPU, f32: --pp refuses other devices);
  // under --tp as well, only its TP rank's shard of them.
  const pipeline = par.pipeline ? preparePipelineStage(config, whole.compute(), par) : null;
  // A TP rank keeps only its shard (CPU f32 as well: --tp refuses other devices).
  const tensorParallel = par.tensorParallel ? prepareTensorParallelRank(whole.compute(), par) : null;
  const own = pipeline?.params ?? tensorParallel?.shard.params;
  const placed = own ? new PlacedModel(whole.config, own, 'cpu', 'f32') : whole;
  const o = config.optim;
  const run: TrainRun = {
    config,
    runDir,
    par,
    progress,
    data,
    placed,
    pipeline,
    tensorParallel,
    optimizer: new T.AdamW(placed.parameters(), {
      lr: o.lr,
      betas: [o.beta1, o.beta2],
      weightDecay: o.weightDecay,
      moments: o.moments,
    }),
    sideStep:
      config.device === 'cuda' && o.overlap === 'auto' && par.size === 1 && !pipeline && !tensorParallel
        ? await cudaSideStep('cuda')
        : null,
    schedule: T.warmupCosine({ peak: o.lr, warmupSteps: o.warmupSteps, totalSteps: o.steps, min: o.minLr }),
    generator: new T.Generator(config.run.seed).fork(7),
    tokensPerStep: o.batchSize * o.gradAccum * config.data.seqLen,
    step: 0,
    tokensSeen: 0,
    bestValLoss: null,
    lastValLoss: Number.NaN,
    lastGood: newest,
    elapsedBefore: 0,
    started: 0,
  };
  restoreOrStart(run);
  run.started = performance.now();
  return run;
}

/** The newest complete checkpoint's step; refuses to overwrite a run without --resume. */
function checkExisting(runDir: string, resume: boolean, progress: ProgressBar): number | null {
  const listing = listCheckpoints(runDir);
  const existing = listing.complete;
  for (const { step, problem } of listing.damaged)
    if (step > (existing.at(-1) ?? -1))
      progress.log(
        `${join(runDir, 'checkpoints', `step-${step}`)} is incomplete (${problem}); ${existing.length ? `the newest complete checkpoint is step-${existing.at(-1)}` : 'no complete checkpoint precedes it'}`,
      );
  if (!resume && existing.length) {
    throw new TrainingError(
      `${runDir} already holds a run (checkpoint step ${existing.at(-1)}); pass --resume to continue it, or --out/--name for a new run`,
    );
  }
  if (resume && !existing.length)
    progress.log(`${runDir}: no complete checkpoint to resume from; starting from step 0`);
  return existing.at(-1) ?? null;
}

/** Loads the resumed optimizer, stream and counters (metrics past them dropped), or empties metrics. */
function restoreOrStart(run: TrainRun): void {
  const { resumed } = run.data;
  const metrics = join(run.runDir, 'metrics.jsonl');
  if (!resumed) {
    if (run.par.isRoot) writeFileSync(metrics, '');
    return;
  }
  // Checkpoints number the whole model's parameters; a stage takes its own, a TP rank its slices.
  // Under --pp with --tp: the stage's entries, then their slices.
  const staged = run.pipeline ? stageOptimizerState(resumed.optimizer, run.pipeline) : resumed.optimizer;
  const shard = run.tensorParallel?.shard ?? run.pipeline?.shard;
  if (shard) {
    const sharded = shardOptimizerState(staged, shard);
    run.optimizer.loadStateDict(sharded.state);
    for (const t of sharded.made) t.dispose();
  } else run.optimizer.loadStateDict(staged);
  run.generator.setState(resumed.state.generator);
  run.step = resumed.state.step;
  run.tokensSeen = resumed.state.tokensSeen;
  run.bestValLoss = resumed.state.bestValLoss;
  run.elapsedBefore = resumed.state.elapsedSeconds;
  if (run.par.isRoot) truncateMetrics(run.runDir, run.step, (line) => run.progress.log(line));
  run.progress.log(`resumed from ${resumed.dir} at step ${run.step}`);
}
