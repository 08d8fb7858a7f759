// `grin eval compare`: the router-estimator comparison of the GRIN paper (Fig. 2) at small scale.
// The same training config (seed, data, model, schedule) runs once per router, into
// OUT/NAME-<router>, and OUT/NAME-compare/compare.json puts the loss curves side by side
// (training loss every step, validation loss at eval steps, final values, loss differences) and,
// for the dashboard, each run's metrics under runs[] ({label, router, metrics}).
// Test: cd apps/trainer && npx vitest run src/commands/eval
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJson } from '@grin-moe/eval';
import { routerNames } from '@grin-moe/router-sparsemixer';
import { CliError, type ParsedFlags } from '../args.js';
import { mergeConfig } from '../train/config.js';
import { runTraining, TrainingError } from '../train/loop.js';
import type { ProgressBar } from '../train/progress.js';
import type { EvalSubcommand } from './eval-model.js';
import { resolveConfig } from './train.js';

interface MetricsRow {
  step: number;
  tokens: number;
  loss: number;
  val_loss?: number;
}

function readMetrics(runDir: string): MetricsRow[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as MetricsRow);
}

export interface CompareResult {
  title: string;
  name: string;
  routers: string[];
  seed: number;
  steps: number;
  /** Each run's directory and metrics (step, tokens, loss, val_loss at eval steps). */
  runs: Array<{ label: string; router: string; runDir: string; metrics: MetricsRow[] }>;
  /** One row a step: step, tokens, and each router's training loss. */
  loss: Array<Record<string, number>>;
  /** One row an eval step: step and each router's validation loss. */
  validation: Array<Record<string, number>>;
  final: Record<string, { loss: number; valLoss: number; valPerplexity: number }>;
  /** Later router's final validation loss minus the first one's (negative: the first is worse). */
  finalValLossDifference: number;
}

/** Trains the flags' config once per router and writes OUT/NAME-compare/compare.json. */
export async function runCompare(flags: ParsedFlags, progress?: ProgressBar): Promise<CompareResult> {
  const routers = String(flags.routers)
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  if (routers.length < 2 || new Set(routers).size !== routers.length) {
    throw new CliError(
      `eval compare: --routers needs at least two different routers, got '${flags.routers}'`,
    );
  }
  const known = routerNames();
  for (const r of routers)
    if (!known.includes(r))
      throw new CliError(`eval compare: unknown router '${r}'; valid: ${known.join(', ')}`);
  const base = resolveConfig({ ...flags, name: undefined, router: undefined });
  const name = (flags.name as string | undefined) ?? 'compare';
  const runDirs: Record<string, string> = {};
  const metrics: Record<string, MetricsRow[]> = {};
  for (const router of routers) {
    const config = mergeConfig(
      base,
      { run: { name: `${name}-${router}` }, model: { router } },
      `eval compare (${router})`,
    );
    process.stderr.write(
      `eval compare: training ${config.run.out}/${config.run.name} (router ${router}, seed ${config.run.seed}, ${config.optim.steps} steps)\n`,
    );
    try {
      const summary = await runTraining(config, { resume: false, progress });
      runDirs[router] = summary.runDir;
      metrics[router] = readMetrics(summary.runDir);
    } catch (error) {
      if (error instanceof TrainingError) throw new CliError(`eval compare: ${error.message}`);
      throw error;
    }
  }
  const first = metrics[routers[0]!]!;
  const loss = first.map((row, i) => {
    const out: Record<string, number> = { step: row.step, tokens: row.tokens };
    for (const r of routers) out[r] = metrics[r]![i]?.loss ?? Number.NaN;
    return out;
  });
  const validation = first
    .filter((row) => row.val_loss !== undefined)
    .map((row) => {
      const out: Record<string, number> = { step: row.step };
      for (const r of routers) out[r] = metrics[r]!.find((m) => m.step === row.step)?.val_loss ?? Number.NaN;
      return out;
    });
  const final: CompareResult['final'] = {};
  for (const r of routers) {
    const rows = metrics[r]!;
    const valLoss = [...rows].reverse().find((m) => m.val_loss !== undefined)?.val_loss ?? Number.NaN;
    final[r] = { loss: rows.at(-1)?.loss ?? Number.NaN, valLoss, valPerplexity: Math.exp(valLoss) };
  }
  const result: CompareResult = {
    title: `${routers.join(' vs ')} (same config, seed ${base.run.seed} and data)`,
    name,
    routers,
    seed: base.run.seed,
    steps: base.optim.steps,
    runs: routers.map((router) => ({
      label: router,
      router,
      runDir: runDirs[router]!,
      metrics: metrics[router]!.map(({ step, tokens, loss, val_loss }) =>
        val_loss === undefined ? { step, tokens, loss } : { step, tokens, loss, val_loss },
      ),
    })),
    loss,
    validation,
    final,
    finalValLossDifference: final[routers[1]!]!.valLoss - final[routers[0]!]!.valLoss,
  };
  return writeJson(join(base.run.out, `${name}-compare`, 'compare.json'), result);
}

export const compareRouters: EvalSubcommand = {
  command: {
    name: 'eval compare',
    summary:
      'train the same config with sparsemixer-v2 and gshard-top2 (same seed and data) and compare the loss curves',
    usage:
      'grin eval compare [--config FILE] [--data FILE] [--name NAME] [--out DIR] [--max-steps N] [--seed S] [--routers A,B]',
    flags: {
      config: { kind: 'string', help: 'training config (JSON or YAML) shared by both runs' },
      data: { kind: 'string', help: 'train on this text / JSONL file instead of the Brown corpus' },
      name: {
        kind: 'string',
        help: 'runs are NAME-<router>; the comparison goes to NAME-compare/compare.json',
        default: 'compare',
      },
      out: { kind: 'string', help: 'parent directory of the runs' },
      'max-steps': { kind: 'number', integer: true, min: 1, help: 'optimizer steps of each run' },
      seed: { kind: 'number', integer: true, min: 0, help: 'seed shared by both runs' },
      routers: {
        kind: 'string',
        help: 'routers to compare, comma-separated',
        default: 'sparsemixer-v2,gshard-top2',
      },
      'time-budget': { kind: 'number', min: 0, help: 'seconds per run (0: none)' },
    },
  },
  async run(flags) {
    const result = await runCompare(flags);
    const [a, b] = result.routers as [string, string];
    for (const r of result.routers) {
      process.stdout.write(
        `${r.padEnd(16)} final training loss ${result.final[r]!.loss.toFixed(4)}, validation loss ${result.final[r]!.valLoss.toFixed(4)} (${result.runs.find((run) => run.router === r)!.runDir})\n`,
      );
    }
    process.stdout.write(
      `validation loss ${b} - ${a}: ${result.finalValLossDifference >= 0 ? '+' : ''}${result.finalValLossDifference.toFixed(4)}\n`,
    );
    process.stdout.write(
      `wrote ${join(result.runs[0]!.runDir, '..', `${result.name}-compare`, 'compare.json')}\n`,
    );
    return 0;
  },
};
