// `grin train`: with no flags, trains the embedded default (a small GRIN MoE on the Brown corpus,
// sized for 2 CPU cores, about 10 minutes) and prints the validation cross-entropy next to the
// corpus' unigram entropy. A config file (JSON or YAML) and flags adjust it; flags win. With
// --resume the run's saved config.json wins and conflicting flags are refused (resume-config.ts).
// Test: cd apps/trainer && npx vitest run src/train src/commands
import { join } from 'node:path';
import { CliError, type Command, parseFlags } from '../args.js';
import { DataSourceError, prefetchData } from '../data/hub-data.js';
import { resolveInitFrom } from '../model-source.js';
import {
  ConfigError,
  defaultTrainConfig,
  mergeConfig,
  readConfigFile,
  type TrainConfig,
  validateConfig,
} from '../train/config.js';
import { DeviceError } from '../train/device.js';
import { JsonFileError } from '../train/json-file.js';
import { launchedAsRank, launchLocalWorkers, trainAsRank } from '../train/launch.js';
import { runTraining } from '../train/loop.js';
import { layoutProblems } from '../train/parallel-layout.js';
import { readSavedConfig, resumeConfig, type Setting, settingsOf } from '../train/resume-config.js';

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a GRIN MoE model (default: a small one on the Brown corpus, ~10 min on 2 CPU cores)',
  usage:
    'grin train [--config FILE] [--out DIR] [--max-steps N] [--seed S] [--router NAME] [--device cpu|cuda] [--dtype f32|bf16] [--dp N] [--pp M] [--tp K] [--resume] ...',
  flags: {
    config: {
      kind: 'string',
      help: 'JSON or YAML file with any of the sections run, data, model, optim, eval, checkpoint',
    },
    out: { kind: 'string', help: 'parent directory of the run (runs/NAME)' },
    name: { kind: 'string', help: 'run name (the directory under --out)' },
    'max-steps': { kind: 'number', integer: true, min: 1, help: 'optimizer steps' },
    seed: { kind: 'number', integer: true, min: 0, help: 'seed of every random stream' },
    router: {
      kind: 'string',
      help: 'router from the registry (sparsemixer-v2, gshard-top2, switch-top1, ...)',
    },
    'lb-mode': {
      kind: 'string',
      help: 'load-balancing counts: local or global (across data-parallel ranks)',
    },
    'lb-alpha': {
      kind: 'number',
      min: 0,
      help: 'load-balancing loss weight per MoE layer (the loss is summed over layers: alpha * L at perfect balance)',
    },
    'init-from': {
      kind: 'string',
      help: 'start from a GRIN / Phi-3.5-MoE model directory (with its tokenizer.json) or Hub id ORG/NAME[@REV]',
    },
    data: {
      kind: 'string',
      help: 'train on a text file (documents separated by blank lines), JSONL {"text", "category"}, a .parquet file, or a Hub dataset id ORG/NAME[@REV]',
    },
    'data-config': { kind: 'string', help: 'Parquet / Hub dataset: the config (subset), e.g. en' },
    'data-split': { kind: 'string', help: 'Parquet / Hub dataset: the split to train on (default train)' },
    'text-column': {
      kind: 'string',
      help: 'Parquet / Hub dataset: the column holding the text (default text)',
    },
    device: {
      kind: 'string',
      help: 'cpu or cuda (needs @grin-moe/kernels-cuda built and a GPU)',
      default: 'cpu',
    },
    dtype: {
      kind: 'string',
      help: 'parameter dtype: f32, or bf16 with f32 master weights (cuda only)',
      default: 'f32',
    },
    dp: { kind: 'number', integer: true, min: 1, help: 'data-parallel ranks', default: 1 },
    pp: { kind: 'number', integer: true, min: 1, help: 'pipeline stages', default: 1 },
    tp: {
      kind: 'number',
      integer: true,
      min: 1,
      help: 'tensor-parallel ranks (attention heads and every expert split N ways; composes with --dp and --pp)',
      default: 1,
    },
    resume: { kind: 'boolean', help: 'continue from the newest complete checkpoint of the run' },
    'time-budget': {
      kind: 'number',
      min: 0,
      help: 'stop with a checkpoint after this many seconds (0: none)',
    },
  },
  async run(argv) {
    const { flags, positional } = parseFlags(trainCommand, argv);
    if (positional.length) throw new CliError(`train: unexpected argument '${positional[0]}'`);
    const config = flags.resume ? resolveResumeConfig(flags) : await resolveInitFrom(resolveConfig(flags));
    const layout = { dp: flags.dp as number, pp: flags.pp as number, tp: flags.tp as number };
    const problems = layoutProblems(config, layout);
    if (problems.length) throw new CliError(`train: ${problems.join('; ')}`);
    const ranks = layout.dp * layout.pp * layout.tp;
    // --dp N --pp M --tp K without a launcher around us: start N x M x K local ranks of this command and wait for them.
    if (ranks > 1 && !launchedAsRank()) {
      const { file, datasetConfig, split, textColumn } = config.data;
      await prefetchData(file, { config: datasetConfig, split, textColumn }).catch((error: unknown) => {
        throw error instanceof DataSourceError ? new CliError(`train --data: ${error.message}`) : error;
      });
      return launchLocalWorkers(argv, ranks);
    }
    const options = { resume: Boolean(flags.resume) };
    const trained = await (launchedAsRank()
      ? trainAsRank(config, options, layout)
      : runTraining(config, options).then((summary) => ({ summary, rank: 0 }))
    ).catch((error: unknown) => {
      throw error instanceof DeviceError ? new CliError(error.message) : error;
    });
    if (trained.rank !== 0) return 0; // rank 0 reports for the run
    const summary = trained.summary;
    const out = process.stdout;
    out.write(`\nrun directory: ${summary.runDir}\n`);
    out.write(`steps: ${summary.steps}${summary.stoppedEarly ? ` (${summary.stoppedEarly})` : ''}\n`);
    out.write(
      `validation cross-entropy: ${summary.finalValLoss.toFixed(4)} nats/token (perplexity ${Math.exp(summary.finalValLoss).toFixed(2)})\n`,
    );
    out.write(
      `unigram entropy of the corpus: ${summary.unigramTrainEntropy.toFixed(4)} nats/token (unigram cross-entropy on validation ${summary.unigramCrossEntropy.toFixed(4)})\n`,
    );
    const overEntropy = 1 - summary.finalValLoss / summary.unigramTrainEntropy;
    out.write(
      `improvement: ${(100 * overEntropy).toFixed(1)}% below the unigram entropy, ${(100 * summary.improvement).toFixed(1)}% below the unigram model's validation cross-entropy\n`,
    );
    out.write(`try: pnpm grin generate --model ${summary.runDir} --prompt "The jury said"\n`);
    return summary.stoppedEarly && !summary.stoppedEarly.startsWith('time budget') ? 1 : 0;
  },
};

export function resolveConfig(flags: Record<string, unknown>): TrainConfig {
  try {
    let config = defaultTrainConfig;
    if (flags.config)
      config = mergeConfig(config, readConfigFile(flags.config as string), flags.config as string);
    const patch: Record<string, Record<string, unknown>> = { run: {}, data: {}, model: {}, optim: {} };
    const extra: Record<string, unknown> = {};
    for (const { field, value } of flagSettings(flags)) {
      const [section, key] = field.split('.') as [string, string | undefined];
      if (key === undefined) extra[section] = value;
      else patch[section]![key] = value;
    }
    config = mergeConfig(config, { ...patch, ...extra }, 'command line');
    if (config.optim.warmupSteps > config.optim.steps)
      config = { ...config, optim: { ...config.optim, warmupSteps: Math.floor(config.optim.steps / 10) } };
    validateConfig(config, flags.config ? `${flags.config as string} + command line` : 'config');
    return config;
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
}

/** Flag -> config field; --data sets two fields. */
const FLAG_FIELDS: Record<string, string> = {
  out: 'run.out',
  name: 'run.name',
  seed: 'run.seed',
  'max-steps': 'optim.steps',
  router: 'model.router',
  'lb-mode': 'optim.lbMode',
  'lb-alpha': 'optim.lbAlpha',
  'init-from': 'data.initFrom',
  'data-config': 'data.datasetConfig',
  'data-split': 'data.split',
  'text-column': 'data.textColumn',
  'time-budget': 'timeBudgetSeconds',
};

/** The config fields the command line sets explicitly, each with its flag. */
export function flagSettings(flags: Record<string, unknown>): Setting[] {
  const settings: Setting[] = [];
  for (const [flag, field] of Object.entries(FLAG_FIELDS))
    if (flags[flag] !== undefined) settings.push({ origin: `--${flag}`, field, value: flags[flag] });
  if (flags.data !== undefined) {
    settings.push({ origin: '--data', field: 'data.source', value: 'file' });
    settings.push({ origin: '--data', field: 'data.file', value: flags.data });
  }
  // cpu and f32 are the flags' defaults, so only other values count as given.
  if (flags.device !== undefined && flags.device !== 'cpu')
    settings.push({ origin: '--device', field: 'device', value: flags.device });
  if (flags.dtype !== undefined && flags.dtype !== 'f32')
    settings.push({ origin: '--dtype', field: 'dtype', value: flags.dtype });
  return settings;
}

/** --resume: the run's saved config, with the flags and --config fields that may change applied. */
export function resolveResumeConfig(flags: Record<string, unknown>): TrainConfig {
  const requested = resolveConfig(flags); // checks the flags and finds the run directory
  try {
    const saved = readSavedConfig(join(requested.run.out, requested.run.name));
    if (!saved) return requested;
    const file = flags.config as string | undefined;
    const settings = [...(file ? settingsOf(readConfigFile(file), file) : []), ...flagSettings(flags)];
    return resumeConfig(saved.config, saved.path, settings);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof JsonFileError) throw new CliError(error.message);
    throw error;
  }
}
