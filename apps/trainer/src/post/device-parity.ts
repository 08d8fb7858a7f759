// CPU vs CUDA post-training parity: `grin sft` and `grin dpo` on the tiny fixture model, with NEFTune
// noise and expert dropout on, trained with one seed on the CPU (the reference), on cuda in f32 and
// on cuda in bf16. The regularizers' draws come from the run's Philox streams on either device, so
// the f32 curves differ only by summation order. Used by cuda.test.ts (GPU machines) and the device
// bundle (tools/device/build-bundle.sh -> .device/train-parity.mjs, after grin train's parity).
// Test: cd apps/trainer && npx vitest run src/post/cuda.test.ts
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PARITY_TOLERANCE } from '../train/device-parity.js';
import { ProgressBar } from '../train/progress.js';
import { defaultPostConfig, mergePostConfig, type PostKind } from './config.js';
import { type PostFixture, writePostFixture } from './fixtures.js';
import { runPostTraining, type Scores } from './loop.js';

export interface PostCurve {
  label: string;
  losses: number[];
  after: Scores;
}

export interface PostParityReport {
  kind: PostKind;
  runs: PostCurve[];
  /** Largest |loss - loss on the cpu| over the steps, per cuda run label. */
  maxDiff: Record<string, number>;
  tolerance: Record<string, number>;
  pass: boolean;
}

const quiet = () =>
  new ProgressBar({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, 1_000_000);

async function postCurve(
  kind: PostKind,
  fixture: PostFixture,
  out: string,
  steps: number,
  device: 'cpu' | 'cuda',
  dtype: 'f32' | 'bf16',
): Promise<PostCurve> {
  const name = `${kind}-${device}-${dtype}`;
  const config = mergePostConfig(
    defaultPostConfig(kind),
    {
      run: { out, name, seed: 77 },
      data: {
        initFrom: fixture.modelDir,
        file: kind === 'sft' ? fixture.chatFile : fixture.prefFile,
        seqLen: 64,
        validationFraction: 0.2,
      },
      optim: { steps, batchSize: 4, warmupSteps: 1, lr: 3e-3 },
      regularize: { neftuneAlpha: 5, expertDropout: 0.2 },
      eval: { every: steps },
      checkpoint: { every: steps, keep: 1 },
      device,
      dtype,
    },
    'post parity',
  );
  const summary = await runPostTraining(config, { resume: false, progress: quiet() });
  const losses = readFileSync(join(summary.runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { loss: number }).loss);
  return { label: `${device} ${dtype}`, losses, after: summary.after };
}

/** `kind` trained `steps` steps on cpu f32, cuda f32 and cuda bf16 with one seed; the curves compared. */
export async function comparePostDevices(
  kind: PostKind,
  steps = 8,
  root = mkdtempSync(join(tmpdir(), `grin-${kind}-parity-`)),
): Promise<PostParityReport> {
  const fixture = writePostFixture(root);
  const cpu = await postCurve(kind, fixture, root, steps, 'cpu', 'f32');
  const runs = [cpu];
  const maxDiff: Record<string, number> = {};
  const tolerance: Record<string, number> = {};
  for (const dtype of ['f32', 'bf16'] as const) {
    const run = await postCurve(kind, fixture, root, steps, 'cuda', dtype);
    runs.push(run);
    maxDiff[run.label] =
      run.losses.length === cpu.losses.length
        ? Math.max(...run.losses.map((l, i) => Math.abs(l - cpu.losses[i]!)))
        : Number.POSITIVE_INFINITY;
    tolerance[run.label] = PARITY_TOLERANCE[dtype];
  }
  const pass = Object.entries(maxDiff).every(([label, d]) => d <= tolerance[label]!);
  return { kind, runs, maxDiff, tolerance, pass };
}

export function formatPostReport(report: PostParityReport): string {
  const lines = [`grin ${report.kind}: step  ${report.runs.map((r) => r.label.padStart(12)).join('')}`];
  report.runs[0]!.losses.forEach((_, i) =>
    lines.push(
      `${String(i + 1).padStart(4)}  ${report.runs.map((r) => (r.losses[i]?.toFixed(6) ?? '-').padStart(12)).join('')}`,
    ),
  );
  for (const r of report.runs) lines.push(`${r.label}: held-out after training ${JSON.stringify(r.after)}`);
  for (const [label, d] of Object.entries(report.maxDiff))
    lines.push(
      `${d <= report.tolerance[label]! ? 'PASS' : 'FAIL'} grin ${report.kind} ${label} vs cpu f32: max |loss difference| ${d.toExponential(3)} (tolerance ${report.tolerance[label]})`,
    );
  return lines.join('\n');
}
