// `grin eval ppl|mc|routing|compare|throughput`: the analyses of @grin-moe/eval on a model
// directory or a run directory (its newest checkpoint), each writing JSON into the run directory
// (eval/*.json, routing/*.json) unless --out says otherwise. ppl, mc and routing live in
// eval-model.ts, compare (two trainings, curves side by side) in eval-compare.ts; throughput here.
// `grin eval help SUB` prints one subcommand's flags. Test: cd apps/trainer && npx vitest run src/commands/eval
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EvaluationError, measureThroughput } from '@grin-moe/eval';
import { defaultGrinConfig, type GrinConfig, parseConfig } from '@grin-moe/model-grin';
import { CliError, type Command, type FlagSpec, parseFlags, renderHelp } from '../args.js';
import { isHubModelId, resolveModelSource } from '../model-source.js';
import { checkOutputFile } from '../output-path.js';
import { defaultTrainConfig } from '../train/config.js';
import { modelShapeFor } from '../train/prepare.js';
import { compareRouters } from './eval-compare.js';
import { type EvalSubcommand, int, mc, ppl, routing, say } from './eval-model.js';

type Sub = EvalSubcommand;

const throughput: Sub = {
  command: {
    name: 'eval throughput',
    summary:
      'training tokens/s (forward + backward + AdamW) of the MoE and of a dense model with the same active parameters',
    usage: 'grin eval throughput [--model DIR] [--batch N] [--seq-len N] [--steps N] [--json] [--out FILE]',
    flags: {
      model: {
        kind: 'string',
        help: "take the shape from this model's config.json (default: grin train's default model)",
      },
      batch: int('sequences per step', 1, 4),
      'seq-len': int('tokens per sequence', 2, 64),
      steps: int('timed steps per model', 1, 3),
      warmup: int('untimed steps first', 0, 1),
      seed: int('seed of the random weights and batches', 0, 0),
      json: { kind: 'boolean', help: 'print one JSON object {bench, device, results, ratios}' },
      out: { kind: 'string', help: 'result JSON (default with --model: RUN/eval/throughput.json)' },
    },
  },
  async run(flags) {
    let config: GrinConfig = {
      ...defaultGrinConfig,
      ...modelShapeFor(defaultTrainConfig.model),
      vocabSize: defaultTrainConfig.data.vocabSize,
    };
    let out = flags.out as string | undefined;
    const given = flags.model as string | undefined;
    if (given) {
      // Only the architecture is read: a Hub id fetches config.json and the tokenizer, no weights.
      const hub = isHubModelId(given);
      const dir = await resolveModelSource(given, {
        command: 'eval throughput',
        weights: false,
        skipMemoryCheck: true,
      });
      try {
        config = parseConfig(
          JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')),
          join(dir, 'config.json'),
        );
        const runDir = hub ? join('runs', 'hub', given.replace(/[/@]/g, '--')) : dir !== given ? given : dir;
        out ??= join(runDir, 'eval', 'throughput.json');
      } catch (error) {
        throw new CliError(`eval throughput: ${(error as Error).message}`);
      }
    }
    if (out) checkOutputFile(out, 'eval throughput --out');
    const result = await measureThroughput(config, {
      batchSize: flags.batch as number,
      seqLen: flags['seq-len'] as number,
      steps: flags.steps as number,
      warmup: flags.warmup as number,
      seed: flags.seed as number,
      out,
    });
    if (flags.json) {
      say(
        JSON.stringify({
          bench: 'throughput',
          device: result.device,
          results: result,
          ratios: { moe_vs_dense: result.ratio },
        }),
      );
    } else {
      say(
        `MoE (${result.experts} experts top-${result.topK}, ${result.moe.activeParameters} of ${result.moe.parameters} parameters active): ${result.moe.tokensPerSecond.toFixed(0)} tokens/s`,
      );
      say(
        `dense (${result.dense.parameters} parameters, MLP ${result.topK}x wider): ${result.dense.tokensPerSecond.toFixed(0)} tokens/s`,
      );
      say(
        `moe_vs_dense: ${result.ratio.toFixed(3)} (${result.device}, ${result.tokensPerStep} tokens a step)`,
      );
      if (out) say(`wrote ${out}`);
    }
    return 0;
  },
};

const subs: Record<string, Sub> = { ppl, mc, routing, compare: compareRouters, throughput };

const UNION_HELP: Record<string, string> = {
  out: 'where results go: a JSON file (ppl, mc, throughput), a directory for routing/*.json (routing), the parent of the runs (compare)',
};

function unionOfFlags(): Record<string, FlagSpec> {
  const union: Record<string, FlagSpec> = {};
  for (const sub of Object.values(subs)) {
    for (const [flag, spec] of Object.entries(sub.command.flags)) {
      const users = Object.entries(subs)
        .filter(([, s]) => flag in s.command.flags)
        .map(([n]) => n);
      if (!(flag in union))
        union[flag] = { ...spec, help: UNION_HELP[flag] ?? `[${users.join(', ')}] ${spec.help}` } as FlagSpec;
    }
  }
  for (const spec of Object.values(union)) if (spec.kind !== 'boolean') delete spec.default;
  return union;
}

export const evalCommand: Command = {
  name: 'eval',
  handlesHelp: true,
  summary: `evaluate a model: ${Object.keys(subs).join(', ')} ('grin eval help SUB' for one's flags)`,
  usage: Object.values(subs)
    .map((s) => s.command.usage)
    .join('\n       '),
  // `grin eval [SUB] --help` is rendered before a subcommand is chosen, so it lists every flag,
  // each with the subcommands that take it.
  flags: unionOfFlags(),
  async run(argv) {
    const [name, ...rest] = argv;
    if (name === 'help' || name === undefined || name === '--help' || name === '-h') {
      const sub = name === 'help' && rest[0] ? subs[rest[0]] : undefined;
      process.stdout.write(sub ? renderHelp(sub.command) : renderHelp(evalCommand));
      return name === undefined ? 1 : 0;
    }
    const sub = subs[name];
    if (!sub) throw new CliError(`eval: unknown analysis '${name}'; valid: ${Object.keys(subs).join(', ')}`);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(renderHelp(sub.command));
      return 0;
    }
    const { flags, positional } = parseFlags(sub.command, rest);
    if (positional.length) throw new CliError(`${sub.command.name}: unexpected argument '${positional[0]}'`);
    try {
      return await sub.run(flags);
    } catch (error) {
      if (error instanceof EvaluationError) throw new CliError(`${sub.command.name}: ${error.message}`);
      throw error;
    }
  },
};
