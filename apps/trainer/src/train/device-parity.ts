// CPU vs CUDA training parity: the same config and seed trained for a few steps on the CPU (the
// reference), on cuda in f32 and on cuda in bf16 (bf16 activations, f32 master weights; AdamW's
// moments f32, then bf16 with stochastic rounding), from a
// small synthetic corpus; compares the loss curves step by step and reports tokens/s. Used by
// cuda.test.ts (GPU machines) and by the device bundle (tools/device/build-bundle.sh ->
// .device/train-parity.mjs).
// Test: cd apps/trainer && npx vitest run src/train
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultGrinConfig, initRandom, nextTokenLoss } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import { openSafetensors } from '@grin-moe/tensor';
import { checkpointDir, completeCheckpoints } from './checkpoints.js';
import { defaultTrainConfig, mergeConfig, type TrainConfig, validateConfig } from './config.js';
import { requireCuda, toDevice } from './device.js';
import { tinyConfig, writeTinyCorpus } from './fixtures.js';
import { runTraining } from './loop.js';
import { modelShapeFor } from './prepare.js';
import { ProgressBar } from './progress.js';

export interface CurveRun {
  label: string;
  losses: number[];
  /** Median tokens/s over the steps after the first (which pays for warm-up). */
  tokensPerSecond: number;
  finalValLoss: number;
  optimizerKeys: string[];
  /** The saved exp_avg.0's dtype in the file (F32 or BF16: the AdamW moments), or null without a checkpoint. */
  momentsDtype: string | null;
}

export interface ParityReport {
  runs: CurveRun[];
  /** Largest |loss_cuda - loss_cpu| over the steps, per cuda run label. */
  maxDiff: Record<string, number>;
  tolerance: Record<string, number>;
  pass: boolean;
}

/**
 * Tolerances on the per-step loss difference: f32 differs only by summation order; bf16 rounds every
 * weight and activation (8 significant bits), which also flips a few near-tied router picks.
 */
export const PARITY_TOLERANCE = { f32: 1e-4, bf16: 5e-2 };

const quiet = () =>
  new ProgressBar({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, 1_000_000);

/** A small MoE (2 layers, 4 experts, width 64) on the synthetic corpus; `steps` steps, fixed seed. */
export function parityConfig(out: string, data: string, steps: number, patch: object = {}): TrainConfig {
  return validateConfig(
    mergeConfig(
      tinyConfig(out, data, steps),
      {
        run: { seed: 1234 },
        data: { seqLen: 32, vocabSize: 300 },
        model: {
          hiddenSize: 64,
          intermediateSize: 64,
          numLayers: 2,
          numHeads: 4,
          numKvHeads: 2,
          numExperts: 4,
          topK: 2,
          slidingWindow: 16,
        },
        optim: { batchSize: 8, gradAccum: 1, lr: 3e-3, minLr: 3e-4, warmupSteps: Math.min(4, steps) },
        eval: { every: 1000, batches: 1 },
        checkpoint: { every: 1000, keep: 1 },
        ...patch,
      },
      'parity config',
    ),
  );
}

export async function trainCurve(config: TrainConfig, label: string): Promise<CurveRun> {
  const summary = await runTraining(config, { resume: false, progress: quiet() });
  const records = readFileSync(join(summary.runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { loss: number; tokens_per_s: number });
  const rates = records
    .slice(1)
    .map((r) => r.tokens_per_s)
    .sort((a, b) => a - b);
  const steps = completeCheckpoints(summary.runDir);
  let [optimizerKeys, momentsDtype]: [string[], string | null] = [[], null];
  if (steps.length) {
    // the file's own dtypes (loading would widen bf16 to f32)
    const saved = openSafetensors(
      join(checkpointDir(summary.runDir, steps.at(-1)!), 'optimizer.safetensors'),
    );
    optimizerKeys = saved.names();
    momentsDtype = optimizerKeys.includes('exp_avg.0') ? saved.info('exp_avg.0').dtype : null;
    saved.close();
  }
  return {
    label,
    losses: records.map((r) => r.loss),
    tokensPerSecond: rates[Math.floor(rates.length / 2)] ?? records[0]!.tokens_per_s,
    finalValLoss: summary.finalValLoss,
    optimizerKeys,
    momentsDtype,
  };
}

/** Trains `steps` steps on cpu, cuda f32, cuda bf16 and cuda bf16 with bf16 moments (one seed) and compares the curves. */
export async function compareDevices(
  steps = 20,
  root = mkdtempSync(join(tmpdir(), 'grin-parity-')),
): Promise<ParityReport> {
  const data = writeTinyCorpus(root, 200);
  const cpu = await trainCurve(parityConfig(join(root, 'cpu'), data, steps), 'cpu f32');
  const runs = [cpu];
  const maxDiff: Record<string, number> = {};
  const tolerance: Record<string, number> = {};
  const variants = [
    ['f32', 'f32'],
    ['bf16', 'f32'],
    ['bf16', 'bf16'],
  ] as const;
  for (const [dtype, moments] of variants) {
    const label = `cuda ${dtype}${moments === 'bf16' ? ', bf16 moments' : ''}`;
    const config = parityConfig(join(root, `cuda-${dtype}-${moments}`), data, steps, {
      device: 'cuda',
      dtype,
    });
    const run = await trainCurve(mergeConfig(config, { optim: { moments } }, 'parity config'), label);
    runs.push(run);
    maxDiff[label] = Math.max(...run.losses.map((l, i) => Math.abs(l - cpu.losses[i]!)));
    if (run.losses.length !== cpu.losses.length) maxDiff[label] = Number.POSITIVE_INFINITY;
    tolerance[label] = PARITY_TOLERANCE[dtype];
  }
  // the bf16 runs keep f32 master weights, with moments of the dtype asked for
  const [bf16, bf16Moments] = runs.slice(-2) as [CurveRun, CurveRun];
  const pass =
    Object.entries(maxDiff).every(([k, d]) => d <= tolerance[k]!) &&
    [bf16, bf16Moments].every((r) => r.optimizerKeys.some((k) => k.startsWith('master.'))) &&
    bf16.momentsDtype === 'F32' &&
    bf16Moments.momentsDtype === 'BF16';
  return { runs, maxDiff, tolerance, pass };
}

/** The size fields of a model config (the speed runs take the default's size, not its router). */
function shapeOf(m: TrainConfig['model']) {
  const { hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, numExperts, topK, slidingWindow } =
    m;
  return { hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, numExperts, topK, slidingWindow };
}

/**
 * Tokens/s of the embedded default's model size (4 layers, width 128, 8 experts, 16 x 64 tokens a
 * step) on each device, same run; the CPU runs fewer steps (it is the slow side).
 */
export async function speedComparison(
  cpuSteps = 6,
  cudaSteps = 20,
  root = mkdtempSync(join(tmpdir(), 'grin-speed-')),
): Promise<CurveRun[]> {
  const data = writeTinyCorpus(root, 1000);
  const sized = (out: string, steps: number, patch: object = {}) =>
    parityConfig(join(root, out), data, steps, {
      data: { seqLen: defaultTrainConfig.data.seqLen, vocabSize: defaultTrainConfig.data.vocabSize },
      model: shapeOf(defaultTrainConfig.model),
      optim: { batchSize: 16, gradAccum: 1, lr: 1.5e-3, minLr: 1.5e-4, warmupSteps: 2 },
      ...patch,
    });
  return [
    await trainCurve(sized('speed-cpu', cpuSteps), 'cpu f32'),
    await trainCurve(sized('speed-cuda-f32', cudaSteps, { device: 'cuda', dtype: 'f32' }), 'cuda f32'),
    await trainCurve(sized('speed-cuda-bf16', cudaSteps, { device: 'cuda', dtype: 'bf16' }), 'cuda bf16'),
  ];
}

/**
 * Proof that `--dtype bf16` computes in bf16: one training forward + backward of the parity model
 * placed as the trainer places it; returns the dtypes of the logits, the loss and the leaves' grads.
 */
export async function bf16Probe(
  device = 'cuda',
  dtype: 'f32' | 'bf16' = 'bf16',
): Promise<{ logits: string; loss: string; grads: string }> {
  if (device !== 'cpu') await requireCuda('bf16 probe');
  const config = {
    ...defaultGrinConfig,
    ...modelShapeFor(parityConfig('.', '.', 20).model),
    vocabSize: 300,
    inputJitterNoise: 0.01,
    routerJitterNoise: 0.01,
  };
  const placed = toDevice(initRandom(config, new T.Generator(1)), device, dtype);
  try {
    return T.tidy(() => {
      const ids = T.tensor(
        Int32Array.from({ length: 64 }, (_, i) => (i * 37) % 300),
        { shape: [2, 32], dtype: 'i32', device },
      );
      const { logits_BSV } = placed.compute().forward(ids, { training: true, generator: new T.Generator(2) });
      const loss = nextTokenLoss(logits_BSV, ids);
      loss.backward();
      const counts = new Map<string, number>();
      for (const p of placed.parameters())
        counts.set(p.grad?.dtype ?? 'none', (counts.get(p.grad?.dtype ?? 'none') ?? 0) + 1);
      return {
        logits: logits_BSV.dtype,
        loss: loss.dtype,
        grads: [...counts].map(([d, n]) => `${n} ${d}`).join(', '),
      };
    });
  } finally {
    placed.dispose();
  }
}

export function formatReport(report: ParityReport): string {
  const lines: string[] = [];
  const cpu = report.runs[0]!;
  lines.push(`step  ${report.runs.map((r) => r.label.padStart(12)).join('')}`);
  cpu.losses.forEach((_, i) =>
    lines.push(
      `${String(i + 1).padStart(4)}  ${report.runs.map((r) => (r.losses[i]?.toFixed(6) ?? '-').padStart(12)).join('')}`,
    ),
  );
  for (const r of report.runs) {
    lines.push(
      `${r.label}: ${r.tokensPerSecond.toFixed(0)} tokens/s (median), final validation loss ${r.finalValLoss.toFixed(4)}, ${r.tokensPerSecond / cpu.tokensPerSecond > 0 ? `${(r.tokensPerSecond / cpu.tokensPerSecond).toFixed(2)}x the CPU` : ''}`,
    );
  }
  for (const [label, d] of Object.entries(report.maxDiff)) {
    lines.push(
      `${d <= report.tolerance[label]! ? 'PASS' : 'FAIL'} ${label} vs cpu f32: max |loss difference| ${d.toExponential(3)} over ${cpu.losses.length} steps (tolerance ${report.tolerance[label]})`,
    );
  }
  for (const run of report.runs.filter((r) => r.label.includes('bf16')))
    lines.push(
      `optimizer state of ${run.label}: ${run.optimizerKeys.filter((k) => k.startsWith('master.')).length} master tensors, moments ${run.momentsDtype}`,
    );
  lines.push(report.pass ? 'PASS train parity' : 'FAIL train parity');
  return lines.join('\n');
}
