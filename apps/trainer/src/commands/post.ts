// `grin sft` and `grin dpo`: post-training in the run layout of `grin train`. With no flags, sft
// fine-tunes the Brown model of `pnpm train` (runs/brown-grin) on the committed Brown chat set and
// dpo continues from that SFT run (runs/brown-sft) on the matching preference set; each prints its
// held-out numbers before and after. Flags win over --config, which wins over the defaults.
// Test: cd apps/trainer && npx vitest run src/post/post.test.ts
import { CliError, type Command, type FlagSpec, parseFlags } from '../args.js';
import { resolveModelSource } from '../model-source.js';
import {
  defaultPostConfig,
  mergePostConfig,
  type PostConfig,
  PostConfigError,
  type PostKind,
  readPostConfigFile,
} from '../post/config.js';
import { formatScores, runPostTraining } from '../post/loop.js';
import { DeviceError } from '../train/device.js';

const sharedFlags: Record<string, FlagSpec> = {
  config: {
    kind: 'string',
    help: 'JSON or YAML with any of run, data, optim, dpo, regularize, eval, checkpoint',
  },
  out: { kind: 'string', help: 'parent directory of the run (runs/NAME)' },
  name: { kind: 'string', help: 'run name (the directory under --out)' },
  'init-from': {
    kind: 'string',
    help: 'model directory, run directory (its newest checkpoint) or Hub id ORG/NAME[@REV]',
  },
  'max-steps': { kind: 'number', integer: true, min: 1, help: 'optimizer steps' },
  seed: { kind: 'number', integer: true, min: 0, help: 'seed of every random stream' },
  lr: { kind: 'number', min: 0, help: 'peak learning rate' },
  'batch-size': {
    kind: 'number',
    integer: true,
    min: 1,
    help: 'conversations (sft) or pairs (dpo) per step',
  },
  'seq-len': {
    kind: 'number',
    integer: true,
    min: 2,
    help: 'longest sequence in tokens; longer ones are cut',
  },
  'neftune-alpha': { kind: 'number', min: 0, help: 'NEFTune noise scale alpha (0: off)' },
  'expert-dropout': { kind: 'number', min: 0, help: "dropout on the experts' hidden activation (0: off)" },
  device: { kind: 'string', help: 'cpu or cuda', default: 'cpu' },
  dtype: { kind: 'string', help: 'f32, or bf16 with f32 master weights (cuda only)', default: 'f32' },
  resume: { kind: 'boolean', help: 'continue from the newest complete checkpoint of the run' },
  'time-budget': { kind: 'number', min: 0, help: 'stop with a checkpoint after this many seconds (0: none)' },
};

function configFrom(kind: PostKind, flags: Record<string, unknown>): PostConfig {
  let config = defaultPostConfig(kind);
  if (flags.config)
    config = mergePostConfig(config, readPostConfigFile(flags.config as string), flags.config as string);
  const patch: Record<string, Record<string, unknown> | unknown> = {};
  const set = (section: string, field: string, value: unknown) => {
    if (value === undefined) return;
    patch[section] ??= {};
    (patch[section] as Record<string, unknown>)[field] = value;
  };
  set('run', 'out', flags.out);
  set('run', 'name', flags.name);
  set('run', 'seed', flags.seed);
  set('data', 'initFrom', flags['init-from']);
  set('data', 'file', flags.data);
  set('data', 'reference', flags.reference);
  set('data', 'seqLen', flags['seq-len']);
  if (flags['no-pack']) set('data', 'pack', false);
  set('optim', 'steps', flags['max-steps']);
  set('optim', 'lr', flags.lr);
  set('optim', 'batchSize', flags['batch-size']);
  set('dpo', 'beta', flags.beta);
  set('regularize', 'neftuneAlpha', flags['neftune-alpha']);
  set('regularize', 'expertDropout', flags['expert-dropout']);
  if (flags.device !== 'cpu') patch.device = flags.device;
  if (flags.dtype !== 'f32') patch.dtype = flags.dtype;
  if (flags['time-budget'] !== undefined) patch.timeBudgetSeconds = flags['time-budget'];
  const merged = mergePostConfig(config, patch, 'command line');
  // --max-steps below the default warmup shortens the warmup rather than failing.
  merged.optim.warmupSteps = Math.min(merged.optim.warmupSteps, merged.optim.steps);
  return merged;
}

function postCommand(kind: PostKind): Command {
  const command: Command = {
    name: kind,
    summary:
      kind === 'sft'
        ? 'supervised fine-tuning on chat JSONL, loss on assistant tokens (default: the Brown model on a Brown chat set, a few minutes)'
        : 'direct preference optimization on {prompt, chosen, rejected} JSONL (default: the Brown SFT model on a Brown preference set)',
    usage: `grin ${kind} [--init-from DIR|ORG/NAME] [--data FILE]${kind === 'dpo' ? ' [--reference DIR] [--beta B]' : ''} [--config FILE] [--max-steps N] [--neftune-alpha A] [--expert-dropout P] [--device cpu|cuda] [--resume] ...`,
    flags: {
      ...sharedFlags,
      ...(kind === 'sft'
        ? { 'no-pack': { kind: 'boolean', help: 'one conversation per padded row instead of packed rows' } }
        : {}),
      data: {
        kind: 'string',
        help:
          kind === 'sft'
            ? 'chat JSONL, one {"messages": [{"role", "content"}, ...]} a line'
            : 'preference JSONL, one {"prompt", "chosen", "rejected"} a line (strings or message lists)',
      },
      ...(kind === 'dpo'
        ? {
            reference: {
              kind: 'string',
              help: 'frozen reference model directory (default: the initial policy)',
            },
            beta: { kind: 'number', min: 0, help: 'DPO beta (strength of the KL anchor to the reference)' },
          }
        : {}),
    },
    async run(argv) {
      const { flags, positional } = parseFlags(command, argv);
      if (positional.length) throw new CliError(`${kind}: unexpected argument '${positional[0]}'`);
      try {
        let config = configFrom(kind, flags);
        // The embedded defaults name local runs (runs/brown-grin), never Hub ids: a missing one is
        // reported with what to run first (loop.ts), not looked up on the Hub.
        if (config.data.initFrom !== defaultPostConfig(kind).data.initFrom)
          config = {
            ...config,
            data: {
              ...config.data,
              initFrom: await resolveModelSource(config.data.initFrom, {
                command: `${kind} --init-from`,
                dtype: 'f32',
              }),
            },
          };
        if (config.data.reference)
          config = {
            ...config,
            data: {
              ...config.data,
              reference: await resolveModelSource(config.data.reference, {
                command: 'dpo --reference',
                dtype: 'f32',
              }),
            },
          };
        const summary = await runPostTraining(config, { resume: Boolean(flags.resume) });
        const out = process.stdout;
        out.write(`\nrun directory: ${summary.runDir}\n`);
        out.write(`steps: ${summary.steps}${summary.stoppedEarly ? ` (${summary.stoppedEarly})` : ''}\n`);
        out.write(
          `held-out ${kind === 'sft' ? 'conversations' : 'pairs'}: ${summary.counts.validation} (train ${summary.counts.train})\n`,
        );
        out.write(`before: ${formatScores(summary.before)}\n`);
        out.write(`after:  ${formatScores(summary.after)}\n`);
        if (kind === 'sft')
          out.write(
            `try: pnpm grin generate --model ${summary.runDir} --chat --prompt "What is the code letter of the news genre in the Brown corpus?"\n`,
          );
        return summary.stoppedEarly?.includes('loss is') ? 1 : 0;
      } catch (error) {
        // Config and device mistakes are usage errors (exit 2); data and run problems exit 1.
        if (error instanceof PostConfigError || error instanceof DeviceError)
          throw new CliError(error.message);
        throw error;
      }
    },
  };
  return command;
}

export const sftCommand = postCommand('sft');
export const dpoCommand = postCommand('dpo');
