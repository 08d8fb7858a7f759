// Test support for the parallel CLI tests (data-parallel, pipeline-parallel, tensor-parallel-train):
// runs of the built `grin train` on the tiny corpus and config in a temporary root, their metrics,
// relative comparisons that name the step (one figure, or a whole logged curve), and the launcher's
// worker of a rank found in /proc.
// Test: cd apps/trainer && npx vitest run src/train/data-parallel.test.ts src/train/pipeline-parallel.test.ts src/train/tensor-parallel-train.test.ts
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyConfig, writeTinyCorpus } from './fixtures.js';

export const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface MetricsRow {
  step: number;
  loss: number;
  aux_loss: number;
  grad_norm: number;
  val_loss?: number;
}

export function metrics(runDir: string): MetricsRow[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

/** |a - b| / |b|, thrown with the step's name when above `tolerance`; returns the difference. */
export function expectRelativelyClose(a: number, b: number, tolerance: number, what: string): number {
  const relative = Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
  if (!(relative <= tolerance))
    throw new Error(`${what}: ${a} vs ${b} (relative ${relative.toExponential(2)} > ${tolerance})`);
  return relative;
}

/**
 * The largest relative difference of every logged figure of `got` against `expected` (rank 0 alone
 * wrote, once per step); throws, naming the step, past 1e-5 (the gradient norm past 1e-4).
 */
export function expectSameCurve(got: MetricsRow[], expected: MetricsRow[], what: string): number {
  const steps = (rows: MetricsRow[]) => rows.map((r) => r.step).join(',');
  if (steps(got) !== steps(expected))
    throw new Error(`${what}: logged steps [${steps(got)}], expected [${steps(expected)}]`);
  let worst = 0;
  expected.forEach((e, i) => {
    const g = got[i]!;
    const name = `${what} step ${e.step}`;
    worst = Math.max(
      worst,
      expectRelativelyClose(g.loss, e.loss, 1e-5, `${name} loss`),
      expectRelativelyClose(g.aux_loss, e.aux_loss, 1e-5, `${name} aux loss`),
      expectRelativelyClose(g.grad_norm, e.grad_norm, 1e-4, `${name} grad norm`),
    );
    if ((g.val_loss === undefined) !== (e.val_loss === undefined))
      throw new Error(`${name}: validation loss ${g.val_loss}, expected ${e.val_loss}`);
    if (e.val_loss !== undefined)
      worst = Math.max(
        worst,
        expectRelativelyClose(g.val_loss!, e.val_loss, 1e-5, `${name} validation loss`),
      );
  });
  return worst;
}

export interface TinyRuns {
  root: string;
  /** The arguments of `grin train` for run `name` with `extra` flags (seed 7, no time budget). */
  args(name: string, extra: string[], configFile?: string): string[];
  /** Runs `grin train` to its end. */
  train(name: string, extra: string[], configFile?: string): SpawnSyncReturns<string>;
  /** A config file of the tiny sections with `patch` merged into them (section by section). */
  config(name: string, patch: Record<string, Record<string, unknown>>): string;
}

/** Runs of `steps` steps on the tiny corpus under a fresh temporary root (checkpoints every 10 steps). */
export function tinyRuns(prefix: string, steps: number): TinyRuns {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const data = writeTinyCorpus(root);
  const {
    run: _run,
    device: _device,
    dtype: _dtype,
    timeBudgetSeconds: _budget,
    ...sections
  } = tinyConfig(root, data, steps);
  const config = (name: string, patch: Record<string, Record<string, unknown>>) => {
    const merged: Record<string, unknown> = { ...sections, checkpoint: { every: 10, keep: 3 } };
    for (const [section, fields] of Object.entries(patch))
      merged[section] = { ...(merged[section] as Record<string, unknown>), ...fields };
    const file = join(root, `${name}.json`);
    writeFileSync(file, JSON.stringify(merged));
    return file;
  };
  const defaultConfig = config('tiny', {});
  const args = (name: string, extra: string[], configFile = defaultConfig) => [
    '--config',
    configFile,
    '--out',
    root,
    '--name',
    name,
    '--seed',
    '7',
    '--time-budget',
    '0',
    ...extra,
  ];
  return {
    root,
    args,
    config,
    train: (name, extra, configFile) =>
      spawnSync(process.execPath, [cli, 'train', ...args(name, extra, configFile)], {
        encoding: 'utf8',
        timeout: 240_000,
      }),
  };
}

/** The pid of the launcher's worker of rank `rank`, found among its children in /proc. */
export function workerPid(launcher: number, rank: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent !== launcher) continue;
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (environ.includes(`RANK=${rank}`)) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  throw new Error(`no worker of rank ${rank} among the children of launcher pid ${launcher} in /proc`);
}
