// The loop of `grin sft` and `grin dpo`, in the run layout of `grin train` (runs/NAME/config.json,
// metrics.jsonl, checkpoints/step-N with the chat template, train.lock, --resume), so the dashboard
// and `grin generate --chat` read these runs as they read training runs. SFT minimises the
// assistant-token cross-entropy; DPO the sigmoid loss against a frozen reference whose log-probs
// are taken in eval mode without a graph, once per batch (and once for the validation pairs). Both
// add the load-balancing loss and GRIN's regularizers (NEFTune, expert dropout) in training steps,
// drawn from the run's Philox stream, whose state the checkpoints keep. Before/after numbers are
// measured in eval mode on the held-out records.
// Test: cd apps/trainer && npx vitest run src/post/post.test.ts
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GrinModel, loadModel, loadTokenizer, type Tokenizer } from '@grin-moe/model-grin';
import { balanceLoss } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import { prepareOutputDir } from '../output-path.js';
import {
  checkpointDir,
  listCheckpoints,
  readOptimizerState,
  readRunState,
  recoverCheckpoints,
  resolveModelDir,
  writeCheckpoint,
} from '../train/checkpoints.js';
import { type PlacedModel, requireCuda, toDevice } from '../train/device.js';
import { writeFileAtomic } from '../train/json-file.js';
import { truncateMetrics } from '../train/metrics-file.js';
import { ProgressBar } from '../train/progress.js';
import { acquireRunLock } from '../train/run-lock.js';
import { brownChatJsonl, brownChatSet } from './brown-chat.js';
import {
  type ChatTemplate,
  chatTemplateFor,
  type MaskedTokens,
  readChatRecords,
  readPreferenceRecords,
} from './chat-data.js';
import type { PostConfig } from './config.js';
import {
  EpochSampler,
  type PaddedRows,
  type PreferencePair,
  packRows,
  padRows,
  preferencePairs,
  sftExamples,
  splitRecords,
} from './examples.js';
import {
  assistantLoss,
  dpoLoss,
  maskedTargets,
  rewardStats,
  sequenceLogProbs,
  targetsTensor,
} from './losses.js';

export class PostTrainingError extends Error {}

/** Held-out numbers: SFT `loss` (assistant tokens); DPO also the rewards and preference accuracies. */
export type Scores = Record<string, number>;

export interface PostSummary {
  runDir: string;
  steps: number;
  before: Scores;
  after: Scores;
  stoppedEarly: string | null;
  initDir: string;
  template: string;
  counts: { train: number; validation: number; truncated: number; dropped: number };
}

/** Where the embedded set is written for a run without --data (the committed files' content). */
function embeddedData(runDir: string, config: PostConfig): string {
  const path = join(runDir, config.kind === 'sft' ? 'brown-chat.jsonl' : 'brown-preferences.jsonl');
  const sets = brownChatJsonl(brownChatSet());
  writeFileAtomic(path, config.kind === 'sft' ? sets.chat : sets.preferences);
  return path;
}

function rowsTensor(
  rows: PaddedRows,
  device: string,
): { ids: T.Tensor; targets: T.Tensor; documents?: T.Tensor } {
  const shape = [rows.rows, rows.length];
  return {
    ids: T.tensor(rows.ids, { shape, dtype: 'i32', device }),
    ...(rows.documents ? { documents: T.tensor(rows.documents, { shape, dtype: 'i32', device }) } : {}),
    targets: targetsTensor(
      maskedTargets(rows.ids, rows.learned, rows.rows, rows.length),
      rows.rows,
      rows.length,
      device,
    ),
  };
}

/** chosen rows then rejected rows, padded together, so one forward gives both log-probs. */
function pairRows(pairs: PreferencePair[], padId: number): PaddedRows {
  return padRows([...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)], padId);
}

/** Summed completion log-probs of chosen and rejected [P] each, without a graph, in eval mode. */
function logProbsNoGrad(
  model: GrinModel,
  pairs: PreferencePair[],
  padId: number,
): { chosen: Float64Array; rejected: Float64Array } {
  return T.noGrad(() =>
    T.tidy(() => {
      const { ids, targets } = rowsTensor(pairRows(pairs, padId), model.device);
      const logps = Float64Array.from(
        sequenceLogProbs(
          model.forward(ids, { training: false }).logits_BSV,
          targets,
        ).toArray() as ArrayLike<number>,
      );
      return { chosen: logps.slice(0, pairs.length), rejected: logps.slice(pairs.length) };
    }),
  );
}

function evaluateSft(model: GrinModel, examples: PaddedRows[], device: string): Scores {
  let total = 0;
  let count = 0;
  T.noGrad(() => {
    for (const rows of examples)
      T.tidy(() => {
        const { ids, targets } = rowsTensor(rows, device);
        const logits = model.forward(ids, { training: false }).logits_BSV;
        const learned = rows.learned.reduce((a, v, i) => a + (v && i % rows.length > 0 ? 1 : 0), 0);
        total += assistantLoss(logits, targets).item() * learned;
        count += learned;
      });
  });
  return { loss: total / count };
}

function evaluateDpo(
  model: GrinModel,
  batches: PreferencePair[][],
  reference: { chosen: Float64Array; rejected: Float64Array }[],
  beta: number,
  padId: number,
): Scores {
  const chosen: number[] = [];
  const rejected: number[] = [];
  let likelihoodCorrect = 0;
  let likelihoodMargin = 0;
  let pairs = 0;
  batches.forEach((batch, i) => {
    const policy = logProbsNoGrad(model, batch, padId);
    const ref = reference[i]!;
    batch.forEach((_, p) => {
      chosen.push(beta * (policy.chosen[p]! - ref.chosen[p]!));
      rejected.push(beta * (policy.rejected[p]! - ref.rejected[p]!));
      likelihoodMargin += policy.chosen[p]! - policy.rejected[p]!;
      if (policy.chosen[p]! > policy.rejected[p]!) likelihoodCorrect++;
      pairs++;
    });
  });
  const rewards = rewardStats(chosen, rejected);
  const z = chosen.map((c, i) => c - rejected[i]!);
  const loss = z.reduce((a, v) => a + Math.log1p(Math.exp(-v)), 0) / z.length;
  return {
    loss,
    reward_chosen: rewards.chosen,
    reward_rejected: rewards.rejected,
    reward_margin: rewards.margin,
    reward_accuracy: rewards.accuracy,
    preference_accuracy: likelihoodCorrect / pairs,
    logp_margin: likelihoodMargin / pairs,
  };
}

function chunk<V>(items: V[], size: number): V[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) =>
    items.slice(i * size, (i + 1) * size),
  );
}

/** Fields of a run's saved config that a resume may not change. */
function resumeConflicts(saved: PostConfig, given: PostConfig): string[] {
  const out: string[] = [];
  for (const key of ['kind', 'run', 'data', 'optim', 'dpo', 'regularize'] as const) {
    const a = saved[key] as unknown as Record<string, unknown> | string;
    const b = given[key] as unknown as Record<string, unknown> | string;
    if (typeof a !== 'object') {
      if (a !== b) out.push(`${key}: the run has ${JSON.stringify(a)}, given ${JSON.stringify(b)}`);
      continue;
    }
    for (const field of Object.keys(a)) {
      if (key === 'optim' && field === 'steps') continue;
      const x = a[field];
      const y = (b as Record<string, unknown>)[field];
      if (JSON.stringify(x) !== JSON.stringify(y))
        out.push(`${key}.${field}: the run has ${JSON.stringify(x)}, given ${JSON.stringify(y)}`);
    }
  }
  return out;
}

export async function runPostTraining(
  given: PostConfig,
  options: { resume: boolean; progress?: ProgressBar },
): Promise<PostSummary> {
  const config = resolveModelDirs(given);
  const progress = options.progress ?? new ProgressBar();
  const log = (line: string) => progress.log(line);
  const what = `${config.kind} run directory`;
  prepareOutputDir(config.run.out, `${config.kind} --out`);
  const runDir = prepareOutputDir(join(config.run.out, config.run.name), what);
  const lock = acquireRunLock(runDir, log);
  try {
    recoverCheckpoints(runDir, log);
    const existing = listCheckpoints(runDir).complete;
    if (!options.resume && existing.length)
      throw new PostTrainingError(
        `${runDir} already holds a run (checkpoint step ${existing.at(-1)}); pass --resume to continue it, or --name for a new run`,
      );
    const savedPath = join(runDir, 'config.json');
    if (options.resume && existsSync(savedPath)) {
      const conflicts = resumeConflicts(JSON.parse(readFileSync(savedPath, 'utf8')) as PostConfig, config);
      if (conflicts.length)
        throw new PostTrainingError(
          `${config.kind} --resume: the config differs from ${savedPath}: ${conflicts.join('; ')}`,
        );
    }
    if (config.device === 'cuda') await requireCuda(`${config.kind} --device cuda`);
    writeFileAtomic(savedPath, `${JSON.stringify(config, null, 2)}\n`);
    return await postLocked(config, runDir, options.resume ? existing : [], progress);
  } finally {
    lock.release();
  }
}

/**
 * --init-from and --reference as model directories: a run directory becomes its newest complete
 * checkpoint, so the saved config names the exact weights, and a resume after that run has moved
 * on is refused instead of silently taking another starting point or reference.
 */
function resolveModelDirs(config: PostConfig): PostConfig {
  const resolve = (given: string, flag: string, hint = '') => {
    try {
      return resolveModelDir(given);
    } catch (error) {
      throw new PostTrainingError(`${config.kind} ${flag}: ${(error as Error).message}${hint}`);
    }
  };
  const initFrom = config.data.initFrom;
  const hint =
    config.data.file === null && initFrom.startsWith('runs/brown-')
      ? ` (the embedded default starts from ${initFrom}: run ${initFrom.endsWith('sft') ? '`pnpm grin sft`' : '`pnpm train`'} first, or pass --init-from DIR)`
      : '';
  return {
    ...config,
    data: {
      ...config.data,
      initFrom: resolve(initFrom, '--init-from', hint),
      reference: config.data.reference === null ? null : resolve(config.data.reference, '--reference'),
    },
  };
}

async function postLocked(
  config: PostConfig,
  runDir: string,
  checkpoints: number[],
  progress: ProgressBar,
): Promise<PostSummary> {
  const log = (line: string) => progress.log(line);
  const initDir = config.data.initFrom;
  const tokenizer: Tokenizer = loadTokenizer(initDir);
  const template: ChatTemplate = chatTemplateFor(initDir, tokenizer);
  const padId = tokenizer.specialIds.pad ?? tokenizer.specialIds.eos ?? 0;
  const dataPath = config.data.file ?? embeddedData(runDir, config);
  log(
    `${config.kind}: starting from ${initDir}; data ${config.data.file ?? 'the embedded Brown set'}; chat template: ${template.source}`,
  );

  const S = config.data.seqLen;
  const tokenized =
    config.kind === 'sft'
      ? sftExamples(readChatRecords(dataPath), template, tokenizer, S)
      : preferencePairs(readPreferenceRecords(dataPath), template, tokenizer, S);
  const split = splitRecords<unknown>(
    tokenized.items,
    config.data.validationFraction,
    config.run.seed,
    dataPath,
  );
  const counts = {
    train: split.train.length,
    validation: split.validation.length,
    truncated: tokenized.truncated,
    dropped: tokenized.dropped,
  };
  log(
    `data: ${counts.train} train / ${counts.validation} validation ${config.kind === 'sft' ? 'conversations' : 'pairs'}` +
      `${counts.truncated ? `, ${counts.truncated} cut at seqLen ${S}` : ''}${counts.dropped ? `, ${counts.dropped} left out (no assistant token within seqLen ${S})` : ''}; ${config.data.pack ? `training rows packed up to ${S} tokens with document masking` : 'rows padded, not packed'}`,
  );

  // The newest complete checkpoint that loads; an unreadable one is named and the previous tried.
  let resumed: {
    dir: string;
    model: GrinModel;
    state: ReturnType<typeof readRunState>;
    optimizer: ReturnType<typeof readOptimizerState>;
  } | null = null;
  for (const step of [...checkpoints].reverse()) {
    const dir = checkpointDir(runDir, step);
    try {
      resumed = {
        dir,
        model: loadModel(dir, { dtype: 'f32' }),
        state: readRunState(dir),
        optimizer: readOptimizerState(dir),
      };
      break;
    } catch (error) {
      log(
        `${dir} cannot be resumed from (${(error as Error).message.split('\n')[0]}); trying an older checkpoint`,
      );
    }
  }
  const device = config.device;
  const placed: PlacedModel = toDevice(
    resumed?.model ?? loadModel(initDir, { dtype: 'f32' }),
    device,
    config.dtype,
  );
  const policy = () => placed.compute();
  let reference: GrinModel | null = null;
  if (config.kind === 'dpo') {
    const referenceDir = config.data.reference ?? initDir;
    const cpuReference = loadModel(referenceDir, { dtype: 'f32' }).eval();
    reference = toDevice(cpuReference, device, config.dtype).compute().eval();
    log(
      `dpo: frozen reference ${referenceDir}${config.data.reference ? '' : ' (the initial policy)'}, beta ${config.dpo.beta}`,
    );
  }

  const B = config.optim.batchSize;
  const validationRows =
    config.kind === 'sft'
      ? chunk(split.validation as MaskedTokens[], B).map((rows) => padRows(rows, padId))
      : [];
  const validationPairs = config.kind === 'dpo' ? chunk(split.validation as PreferencePair[], B) : [];
  const validationReference = reference
    ? validationPairs.map((batch) => logProbsNoGrad(reference!, batch, padId))
    : [];
  const evaluate = (): Scores =>
    config.kind === 'sft'
      ? evaluateSft(policy(), validationRows, device)
      : evaluateDpo(policy(), validationPairs, validationReference, config.dpo.beta, padId);

  const beforePath = join(runDir, 'before.json');
  let before: Scores;
  if (resumed && existsSync(beforePath)) before = JSON.parse(readFileSync(beforePath, 'utf8')) as Scores;
  else {
    before = evaluate();
    writeFileAtomic(beforePath, `${JSON.stringify(before)}\n`);
  }
  log(`before: ${formatScores(before)}`);

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
  const sampler = new EpochSampler<unknown>(split.train, config.run.seed);
  let step = 0;
  let tokensSeen = 0;
  let elapsedBefore = 0;
  if (resumed) {
    optimizer.loadStateDict(resumed.optimizer);
    generator.setState(resumed.state.generator);
    ({ step, tokensSeen } = resumed.state);
    elapsedBefore = resumed.state.elapsedSeconds;
    truncateMetrics(runDir, step, log);
    log(`resumed from ${resumed.dir} at step ${step}`);
    if (resumed.model !== placed.compute()) resumed.model.dispose();
  } else writeFileSync(join(runDir, 'metrics.jsonl'), '');

  const started = performance.now();
  const elapsed = () => elapsedBefore + (performance.now() - started) / 1000;
  const save = () => {
    const cpu = placed.toCpu();
    try {
      writeCheckpoint(
        runDir,
        {
          model: cpu.model,
          optimizer,
          saveTokenizer: (dir) => {
            tokenizer.save(dir);
            writeFileSync(join(dir, 'chat_template.jinja'), template.template);
          },
          state: {
            step,
            tokensSeen,
            generator: generator.getState(),
            elapsedSeconds: elapsed(),
            bestValLoss: null,
          },
        },
        config.checkpoint.keep,
      );
    } finally {
      if (cpu.copied) cpu.model.dispose();
    }
  };
  const regularizers = {
    neftuneAlpha: config.regularize.neftuneAlpha,
    expertDropout: config.regularize.expertDropout,
  };
  let stoppedEarly: string | null = null;
  let lastSaved = checkpoints.at(-1) ?? null;
  while (step < o.steps) {
    const stepStart = performance.now();
    step++;
    optimizer.lr = schedule(step);
    const batch = sampler.batch((step - 1) * B, B);
    const record: Record<string, number> = { step };
    const scope = new T.Scope();
    let values: number[];
    let tokens: number;
    let clipScale: T.Tensor | null = null;
    try {
      const rows =
        config.kind === 'sft'
          ? config.data.pack
            ? packRows(batch as MaskedTokens[], S, padId)
            : padRows(batch as MaskedTokens[], padId)
          : pairRows(batch as PreferencePair[], padId);
      tokens = rows.tokens;
      const referenceLogps = reference ? logProbsNoGrad(reference, batch as PreferencePair[], padId) : null;
      const { ids, targets, documents } = rowsTensor(rows, device);
      const out = policy().forward(ids, {
        training: true,
        generator,
        ...regularizers,
        documents_BS: documents,
      });
      const { loss: aux } = await balanceLoss(out.balance, { alpha: o.lbAlpha, mode: 'local' });
      let main: T.Tensor;
      let rewards: T.Tensor[] = [];
      if (referenceLogps) {
        const logps = sequenceLogProbs(out.logits_BSV, targets);
        const P = batch.length;
        const f = (values: Float64Array) => T.tensor(values, { dtype: logps.dtype, device });
        const dpo = dpoLoss(
          logps.slice([0, P]),
          logps.slice([P, 2 * P]),
          f(referenceLogps.chosen),
          f(referenceLogps.rejected),
          config.dpo.beta,
        );
        main = dpo.loss;
        rewards = [dpo.chosenRewards_P, dpo.rejectedRewards_P];
      } else main = assistantLoss(out.logits_BSV, targets);
      T.add(main, aux).backward();
      // One read back per step: loss, aux, gradient norm and the rewards. The clip coefficient
      // stays on the device for AdamW to apply as it reads the gradients.
      const { norm, scale } = T.gradNormScale(placed.parameters(), o.clip);
      clipScale = scale.alias({ track: false }); // outlives the step's scope
      values = Array.from(
        T.noGrad(() =>
          T.concat([main, aux, norm, ...rewards].map((t) => T.cast(t, 'f32').reshape([-1]))).toArray(),
        ) as Float32Array,
      );
    } finally {
      scope.dispose();
    }
    const [loss, aux, gradNorm] = values as [number, number, number];
    if (!Number.isFinite(loss)) {
      clipScale?.dispose();
      optimizer.zeroGrad();
      stoppedEarly = `step ${step}: the loss is ${loss}; stopped. ${lastSaved === null ? 'No checkpoint was written yet.' : `The last good checkpoint is ${checkpointDir(runDir, lastSaved)}.`}`;
      log(stoppedEarly);
      step--;
      break;
    }
    optimizer.stepOnce({ gradScale: clipScale! });
    clipScale!.dispose();
    optimizer.zeroGrad();
    tokensSeen += tokens;
    Object.assign(record, {
      tokens: tokensSeen,
      loss,
      lr: optimizer.lr,
      grad_norm: gradNorm,
      tokens_per_s: tokens / ((performance.now() - stepStart) / 1000),
      aux_loss: aux,
    });
    if (config.kind === 'dpo') {
      const P = batch.length;
      const r = rewardStats(values.slice(3, 3 + P), values.slice(3 + P, 3 + 2 * P));
      Object.assign(record, {
        rewards_chosen: r.chosen,
        rewards_rejected: r.rejected,
        rewards_margin: r.margin,
        rewards_accuracy: r.accuracy,
      });
    }
    if (step % config.eval.every === 0 || step === o.steps) {
      const scores = evaluate();
      record.val_loss = scores.loss!;
      for (const [key, value] of Object.entries(scores)) if (key !== 'loss') record[`val_${key}`] = value;
      log(`step ${step}: ${formatScores(scores)}`);
    }
    appendFileSync(join(runDir, 'metrics.jsonl'), `${JSON.stringify(record)}\n`);
    progress.update({
      step,
      total: o.steps,
      tokensPerSecond: record.tokens_per_s!,
      loss,
      lr: optimizer.lr,
      etaSeconds:
        ((o.steps - step) * (performance.now() - started)) /
        1000 /
        Math.max(1, step - (resumed?.state.step ?? 0)),
    });
    if (step % config.checkpoint.every === 0 || step === o.steps) {
      save();
      lastSaved = step;
    }
    if (config.timeBudgetSeconds > 0 && elapsed() > config.timeBudgetSeconds && step < o.steps) {
      stoppedEarly = `time budget of ${config.timeBudgetSeconds}s reached at step ${step} of ${o.steps}`;
      log(stoppedEarly);
      save();
      break;
    }
  }
  progress.done();
  const after = evaluate();
  if (device !== 'cpu') placed.dispose();
  return { runDir, steps: step, before, after, stoppedEarly, initDir, template: template.source, counts };
}

export function formatScores(scores: Scores): string {
  if (!('reward_accuracy' in scores))
    return `assistant-token loss ${scores.loss!.toFixed(4)} nats (perplexity ${Math.exp(scores.loss!).toFixed(2)})`;
  const f = (v: number | undefined) => v!.toFixed(4);
  return (
    `preference accuracy ${f(scores.preference_accuracy)} (policy log-prob of chosen > rejected), log-prob margin ${f(scores.logp_margin)}; ` +
    `reward accuracy ${f(scores.reward_accuracy)}, reward margin ${f(scores.reward_margin)} (chosen ${f(scores.reward_chosen)}, rejected ${f(scores.reward_rejected)}), DPO loss ${f(scores.loss)}`
  );
}

export { GrinModel };
