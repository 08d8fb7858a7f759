// The training loop of `grin train`: data and tokenizer, model, AdamW with warmup + cosine,
// gradient accumulation and clipping, the (global) load-balancing loss, evaluation, metrics,
// atomic checkpoints and exact resume. Every random draw comes from seeded Philox streams whose
// state is checkpointed, and the batch of a step is a function of (seed, step): an interrupted and
// resumed run reproduces the uninterrupted one bit for bit on CPU. With --device cuda the model is
// built on the CPU, copied to the GPU (toDevice), each batch is uploaded, and metrics and
// checkpoints read values back to the host (checkpoints as CPU f32). With --dtype bf16 the forward
// and backward run in bf16 on the bf16 leaves; AdamW keeps f32 masters. runTraining first checks
// the output path, takes the run's lock (one writer per run), recovers interrupted checkpoint saves
// and, on resume, refuses a config that differs from the run's saved one.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GrinModel, idsTensor, nextTokenLoss, type Tokenizer } from '@grin-moe/model-grin';
import { balanceLoss } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import { prepareOutputDir } from '../output-path.js';
import { listCheckpoints, recoverCheckpoints, writeCheckpoint } from './checkpoints.js';
import type { TrainConfig } from './config.js';
import { type StepParallel, singleProcess } from './data-parallel.js';
import { type PlacedModel, requireCuda, toDevice } from './device.js';
import { writeFileAtomic } from './json-file.js';
import { truncateMetrics } from './metrics-file.js';
import { prepareData, type TrainingData } from './prepare.js';
import { ProgressBar } from './progress.js';
import { configConflicts, readSavedConfig } from './resume-config.js';
import { writeRoutingReport } from './routing.js';
import { acquireRunLock } from './run-lock.js';

export interface TrainOptions {
  resume: boolean;
  /** Data-parallel rank of a `grin train --dp N` run (default: one process). */
  parallel?: StepParallel;
  progress?: ProgressBar;
  /** For tests: stop after this step as if killed (no final checkpoint). */
  abortAfterStep?: number;
}

export interface TrainSummary {
  runDir: string;
  steps: number;
  finalValLoss: number;
  unigramCrossEntropy: number;
  unigramTrainEntropy: number;
  improvement: number;
  stoppedEarly: string | null;
}

export class TrainingError extends Error {}

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
  const progress = options.progress ?? new ProgressBar();
  const runDir = join(config.run.out, config.run.name);
  const listing = listCheckpoints(runDir);
  const existing = listing.complete;
  for (const { step, problem } of listing.damaged)
    if (step > (existing.at(-1) ?? -1))
      progress.log(
        `${join(runDir, 'checkpoints', `step-${step}`)} is incomplete (${problem}); ${existing.length ? `the newest complete checkpoint is step-${existing.at(-1)}` : 'no complete checkpoint precedes it'}`,
      );
  if (!options.resume && existing.length) {
    throw new TrainingError(
      `${runDir} already holds a run (checkpoint step ${existing.at(-1)}); pass --resume to continue it, or --out/--name for a new run`,
    );
  }
  if (options.resume && !existing.length)
    progress.log(`${runDir}: no complete checkpoint to resume from; starting from step 0`);
  if (config.device === 'cuda') await requireCuda();
  const par = options.parallel ?? singleProcess;
  await par.ready(); // rank 0 has locked and recovered the run directory
  if (par.isRoot) writeFileAtomic(join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);

  const data = await prepareData(config, runDir, existing.at(-1) ?? null, options.resume, progress);
  const { tokenizer, train, validation, unigram } = data;
  const placed = toDevice(data.model, config.device, config.dtype);
  if (placed.device !== 'cpu' || placed.dtype !== 'f32') data.model.dispose();
  const device = placed.device;
  progress.log(
    `data: ${train.stream.tokens.length} train / ${validation.ids.length} validation tokens, vocab ${tokenizer.vocabSize}, ` +
      `unigram entropy ${unigram.trainEntropy.toFixed(4)} nats (validation cross-entropy ${unigram.validationCrossEntropy.toFixed(4)})`,
  );
  progress.log(
    `model: ${countParams(placed)} parameters (${config.model.numLayers} layers, ${config.model.numExperts} experts top-${config.model.topK}, router ${config.model.router})` +
      (device === 'cpu'
        ? ''
        : ` on ${device}, ${config.dtype}${config.dtype === 'bf16' ? ' compute with f32 master weights' : ''}`),
  );

  const o = config.optim;
  const optimizer = new T.AdamW(placed.parameters(), {
    lr: o.lr,
    betas: [o.beta1, o.beta2],
    weightDecay: o.weightDecay,
  });
  const schedule = T.warmupCosine({
    peak: o.lr,
    warmupSteps: o.warmupSteps,
    totalSteps: o.steps,
    min: o.minLr,
  });
  const generator = new T.Generator(config.run.seed).fork(7);
  let step = 0;
  let tokensSeen = 0;
  let elapsedBefore = 0;
  let bestValLoss: number | null = null;
  if (data.resumed) {
    optimizer.loadStateDict(data.resumed.optimizer);
    generator.setState(data.resumed.state.generator);
    ({ step, tokensSeen, bestValLoss } = data.resumed.state);
    elapsedBefore = data.resumed.state.elapsedSeconds;
    if (par.isRoot) truncateMetrics(runDir, step, (line) => progress.log(line));
    progress.log(`resumed from ${data.resumed.dir} at step ${step}`);
  } else {
    if (par.isRoot) writeFileSync(join(runDir, 'metrics.jsonl'), '');
  }

  const tokensPerStep = o.batchSize * o.gradAccum * config.data.seqLen;
  const started = performance.now();
  const elapsed = () => elapsedBefore + (performance.now() - started) / 1000;
  let lastGood = existing.at(-1) ?? null;
  let stoppedEarly: string | null = null;
  let lastValLoss = Number.NaN;
  const save = () => {
    lastGood = step;
    if (!par.isRoot) return;
    // Checkpoints hold CPU f32 values whatever the device; the optimizer state is read back as is.
    const cpu = placed.toCpu();
    try {
      writeCheckpoint(
        runDir,
        {
          model: cpu.model,
          optimizer,
          saveTokenizer: (dir) => tokenizer.save(dir),
          state: {
            step,
            tokensSeen,
            generator: generator.getState(),
            elapsedSeconds: elapsed(),
            bestValLoss,
          },
        },
        config.checkpoint.keep,
      );
    } finally {
      if (cpu.copied) cpu.model.dispose();
    }
  };
  const validate = () => evaluate(placed, validation.ids, validation.rows, config);

  while (step < o.steps) {
    const stepStart = performance.now();
    step++;
    optimizer.lr = schedule(step);
    // Loss sums stay on the device; the step reads them back once, with the gradient norm.
    let sums_2: T.Tensor | null = null;
    for (let micro = 0; micro < o.gradAccum; micro++) {
      const first = ((step - 1) * o.gradAccum + micro) * o.batchSize;
      const scope = new T.Scope();
      try {
        const shard = par.shard(first, o.batchSize); // this rank's rows of the global batch
        const ids = T.tensor(train.sampler.rows(shard.first, shard.count), {
          shape: [shard.count, config.data.seqLen],
          dtype: 'i32',
          device,
        });
        const draws = par.draws(generator);
        const out = par
          .model(placed, micro === o.gradAccum - 1)
          .forward(ids, { training: true, generator: draws, ...config.regularize });
        par.settle(generator, draws);
        const ce = nextTokenLoss(out.logits_BSV, ids);
        const { loss: aux } = await balanceLoss(out.balance, {
          alpha: o.lbAlpha,
          mode: o.lbMode,
          allReduce: par.allReduce,
        });
        const total = T.div(T.add(ce, aux), o.gradAccum);
        total.backward();
        const pair_2 = T.noGrad(() =>
          T.concat([T.cast(ce, 'f32').reshape([1]), T.cast(aux, 'f32').reshape([1])]),
        );
        const next_2: T.Tensor = sums_2 ? T.add(sums_2, pair_2) : pair_2;
        sums_2?.dispose();
        sums_2 = next_2.alias({ track: false }); // outlives the micro-step's scope
      } finally {
        scope.dispose();
      }
    }
    await par.finishGradients();
    const [localLossSum, localAuxSum, gradNorm] = T.tidy(() => {
      const norm = T.clipGradNorm(placed.parameters(), o.clip);
      return Array.from(T.concat([sums_2!, T.cast(norm, 'f32').reshape([1])]).toArray() as Float32Array);
    }) as [number, number, number];
    sums_2!.dispose();
    const [lossSum, auxSum] = await par.averageSums(Float32Array.of(localLossSum, localAuxSum));
    const loss = lossSum / o.gradAccum;
    if (!Number.isFinite(loss)) {
      optimizer.zeroGrad();
      stoppedEarly = `step ${step}: the loss is ${loss}; stopped. ${lastGood === null ? 'No checkpoint was written yet.' : `The last good checkpoint is ${join(runDir, 'checkpoints', `step-${lastGood}`)}.`}`;
      progress.log(stoppedEarly);
      step--;
      break;
    }
    optimizer.stepOnce();
    optimizer.zeroGrad();
    tokensSeen += tokensPerStep;
    const stepSeconds = (performance.now() - stepStart) / 1000;
    const record: Record<string, number> = {
      step,
      tokens: tokensSeen,
      loss,
      lr: optimizer.lr,
      grad_norm: gradNorm,
      tokens_per_s: tokensPerStep / stepSeconds,
      aux_loss: auxSum / o.gradAccum,
    };
    if (par.isRoot && (step % config.eval.every === 0 || step === o.steps)) {
      lastValLoss = validate();
      record.val_loss = lastValLoss;
      record.val_ppl = Math.exp(lastValLoss);
      bestValLoss = bestValLoss === null ? lastValLoss : Math.min(bestValLoss, lastValLoss);
      progress.log(
        `step ${step}: validation loss ${lastValLoss.toFixed(4)} (perplexity ${Math.exp(lastValLoss).toFixed(2)})`,
      );
    }
    if (par.isRoot) appendFileSync(join(runDir, 'metrics.jsonl'), `${JSON.stringify(record)}\n`);
    const rate =
      (step - (data.resumed?.state.step ?? 0)) / Math.max(1e-9, (performance.now() - started) / 1000);
    progress.update({
      step,
      total: o.steps,
      tokensPerSecond: record.tokens_per_s!,
      loss,
      lr: optimizer.lr,
      etaSeconds: (o.steps - step) / rate,
    });
    if (options.abortAfterStep !== undefined && step >= options.abortAfterStep) return abandon(runDir, step);
    if (step % config.checkpoint.every === 0 || step === o.steps) save();
    const overBudget = config.timeBudgetSeconds > 0 && elapsed() > config.timeBudgetSeconds;
    if ((await par.any(overBudget)) && step < o.steps) {
      stoppedEarly = `time budget of ${config.timeBudgetSeconds}s reached at step ${step} of ${o.steps}`;
      progress.log(stoppedEarly);
      break;
    }
  }
  progress.done();
  if (stoppedEarly?.startsWith('time budget')) {
    lastValLoss = validate();
    save();
  }
  if (!Number.isFinite(lastValLoss) && lastGood !== null && !stoppedEarly) lastValLoss = validate();
  // The routing report runs on the CPU (its batches are host tensors): a CPU copy off the device.
  const cpu = placed.toCpu();
  try {
    if (par.isRoot) writeRoutingReport(runDir, cpu.model, validation, config, tokenizer);
  } finally {
    if (cpu.copied) cpu.model.dispose();
  }
  if (device !== 'cpu') placed.dispose();
  const improvement = 1 - lastValLoss / unigram.validationCrossEntropy;
  return {
    runDir,
    steps: step,
    finalValLoss: lastValLoss,
    unigramCrossEntropy: unigram.validationCrossEntropy,
    unigramTrainEntropy: unigram.trainEntropy,
    improvement,
    stoppedEarly,
  };
}

/** Mean next-token cross-entropy over the fixed validation windows, in eval mode, on the model's device. */
export function evaluate(
  source: GrinModel | PlacedModel,
  ids: Int32Array,
  rows: number,
  config: TrainConfig,
): number {
  const S = config.data.seqLen;
  const B = config.optim.batchSize;
  let total = 0;
  let count = 0;
  T.noGrad(() => {
    for (let r = 0; r < rows; r += B) {
      const n = Math.min(B, rows - r);
      T.tidy(() => {
        const model = source instanceof GrinModel ? source : source.compute();
        const batch = T.tensor(ids.subarray(r * S, (r + n) * S), {
          shape: [n, S],
          dtype: 'i32',
          device: model.device,
        });
        const { logits_BSV } = model.forward(batch, { training: false });
        total += nextTokenLoss(logits_BSV, batch).item() * n;
        count += n;
      });
    }
  });
  return total / count;
}

function countParams(model: { parameters(): T.Tensor[] }): string {
  const n = model.parameters().reduce((a, p) => a + p.size, 0);
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`;
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

export type { Tokenizer, TrainingData };
export { idsTensor };
