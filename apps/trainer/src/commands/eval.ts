// `grin eval ppl|mc|routing|compare|throughput`: the analyses of @grin-moe/eval on a model
// directory or a run directory (its newest checkpoint), each writing JSON into the run directory
// (eval/*.json, routing/*.json) unless --out says otherwise. `compare` trains the same config with
// two routers (same seed and data) and puts both loss curves side by side in runs/NAME-compare/.
// `grin eval help SUB` prints one subcommand's flags. Test: cd apps/trainer && npx vitest run src/commands/eval
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import {
  EvaluationError,
  MC_FORMATS,
  type McFormat,
  measureThroughput,
  multipleChoice,
  perplexity,
  readDocuments,
  routingAnalysis,
  type TextDocument,
  tokenRouting,
} from '@grin-moe/eval';
import {
  defaultGrinConfig,
  type GrinConfig,
  type GrinModel,
  loadModel,
  loadTokenizer,
  parseConfig,
  type Tokenizer,
} from '@grin-moe/model-grin';
import { CliError, type Command, type FlagSpec, type ParsedFlags, parseFlags, renderHelp } from '../args.js';
import { loadBrown } from '../data/brown.js';
import { resolveModelDir } from '../train/checkpoints.js';
import { defaultTrainConfig } from '../train/config.js';
import { compareRouters } from './eval-compare.js';

const model: FlagSpec = {
  kind: 'string',
  help: 'model directory, or a run directory (its newest checkpoint)',
};
const dtype: FlagSpec = { kind: 'string', help: 'compute dtype, f32 or f64', default: 'f32' };
const int = (help: string, min: number, value?: number): FlagSpec => ({
  kind: 'number',
  integer: true,
  min,
  help,
  ...(value !== undefined ? { default: value } : {}),
});

interface Sub {
  command: Command;
  run(flags: ParsedFlags): Promise<number>;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

/** A counter redrawn in place on a terminal; silent when stderr is a file or pipe. */
const progressLine = (label: string) => (done: number, total: number) => {
  if (process.stderr.isTTY) process.stderr.write(`\r${label} ${done}/${total}${done === total ? '\n' : ''}`);
};

/** The model directory, its run directory (where results go) and the loaded model and tokenizer. */
function open(name: string, flags: ParsedFlags): { runDir: string; model: GrinModel; tokenizer: Tokenizer } {
  const given = flags.model as string | undefined;
  if (!given) throw new CliError(`eval ${name}: --model DIR is required`);
  const kind = flags.dtype as string;
  if (kind !== 'f32' && kind !== 'f64')
    throw new CliError(`eval ${name}: --dtype must be f32 or f64, got '${kind}'`);
  try {
    const dir = resolveModelDir(given);
    const runDir =
      dir !== given ? given : /[/\\]checkpoints[/\\]step-\d+[/\\]?$/.test(dir) ? dirname(dirname(dir)) : dir;
    const tokenizer = loadTokenizer(dir);
    return { runDir, model: loadModel(dir, { dtype: kind }), tokenizer };
  } catch (error) {
    throw new CliError(`eval ${name}: ${(error as Error).message}`);
  }
}

function needFile(name: string, flags: ParsedFlags, flag: string, what: string): string {
  const file = flags[flag] as string | undefined;
  if (!file) throw new CliError(`eval ${name}: --${flag} FILE is required (${what})`);
  if (!existsSync(file)) throw new CliError(`eval ${name}: --${flag} ${file}: no such file`);
  return file;
}

const ppl: Sub = {
  command: {
    name: 'eval ppl',
    summary:
      'perplexity: mean next-token cross-entropy over non-overlapping windows of a text or JSONL {"text"} file',
    usage: 'grin eval ppl --model DIR --data FILE [--seq-len N] [--batch N] [--max-tokens N] [--out FILE]',
    flags: {
      model,
      data: {
        kind: 'string',
        help: 'text file (documents separated by blank lines) or JSONL with a "text" field',
      },
      'seq-len': int('tokens per window (default: min(512, context))', 2),
      batch: int('windows per forward pass', 1, 4),
      'max-tokens': int('score only the first N tokens', 2),
      out: { kind: 'string', help: 'result JSON (default RUN/eval/perplexity.json)' },
      dtype,
    },
    run: async () => 0,
  },
  async run(flags) {
    const data = needFile('ppl', flags, 'data', 'the text to score');
    const { runDir, model, tokenizer } = open('ppl', flags);
    const out = (flags.out as string | undefined) ?? join(runDir, 'eval', 'perplexity.json');
    const result = perplexity(model, tokenizer, data, {
      seqLen: flags['seq-len'] as number | undefined,
      batchSize: flags.batch as number,
      maxTokens: flags['max-tokens'] as number | undefined,
      out,
      progress: progressLine('windows'),
    });
    say(
      `perplexity ${result.perplexity.toFixed(3)} (cross-entropy ${result.meanCrossEntropy.toFixed(4)} nats/token, ${result.bitsPerByte.toFixed(4)} bits/byte) over ${result.tokens} tokens in ${result.windows} windows of ${result.seqLen}`,
    );
    say(`wrote ${out}`);
    return 0;
  },
};

const mc: Sub = {
  command: {
    name: 'eval mc',
    summary: 'multiple-choice accuracy by log-likelihood on HellaSwag-, ARC- or MMLU-style JSONL, k-shot',
    usage:
      'grin eval mc --model DIR --data FILE [--format hellaswag|arc|mmlu] [--shots K --shots-from FILE] [--seed S] [--limit N] [--out FILE]',
    flags: {
      model,
      data: {
        kind: 'string',
        help: 'JSONL task file: HellaSwag {ctx, endings, label}, ARC {question, choices: {text, label}, answerKey} or MMLU {question, choices, answer}',
      },
      format: {
        kind: 'string',
        help: `task format (default: detected from the first line): ${MC_FORMATS.join(', ')}`,
      },
      shots: int('solved examples before each question', 0, 0),
      'shots-from': { kind: 'string', help: 'task file of the same format to draw the shots from' },
      seed: int('seed of the shot draws', 0, 1234),
      limit: int('score only the first N items', 1),
      'add-bos': { kind: 'boolean', help: "prepend the tokenizer's BOS token" },
      out: { kind: 'string', help: 'result JSON (default RUN/eval/mc-<file name>.json)' },
      dtype,
    },
    run: async () => 0,
  },
  async run(flags) {
    const data = needFile('mc', flags, 'data', 'the task file');
    const format = flags.format as string | undefined;
    if (format !== undefined && !MC_FORMATS.includes(format as McFormat)) {
      throw new CliError(`eval mc: unknown --format '${format}'; valid: ${MC_FORMATS.join(', ')}`);
    }
    const shots = flags.shots as number;
    const shotFile =
      shots > 0
        ? needFile('mc', flags, 'shots-from', `the pool of solved examples for ${shots}-shot prompts`)
        : undefined;
    const { runDir, model, tokenizer } = open('mc', flags);
    const out =
      (flags.out as string | undefined) ?? join(runDir, 'eval', `mc-${basename(data, extname(data))}.json`);
    const result = multipleChoice(model, tokenizer, data, {
      format: format as McFormat | undefined,
      shots,
      shotFile,
      seed: flags.seed as number,
      limit: flags.limit as number | undefined,
      addBos: Boolean(flags['add-bos']),
      out,
      progress: progressLine('items'),
    });
    const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
    say(
      `${result.format} ${shots}-shot, ${result.n} items: accuracy ${pct(result.accuracy)} ± ${pct(result.accuracyStderr)}, length-normalised ${pct(result.accuracyNorm)} ± ${pct(result.accuracyNormStderr)}`,
    );
    say(`wrote ${out}`);
    return 0;
  },
};

/** Brown texts labelled by genre: the default category set (the GRIN paper's Fig. 6 uses tasks). */
function brownDocuments(): TextDocument[] {
  return loadBrown().texts.map((t) => ({ text: t.text, category: t.genreName, source: `brown:${t.id}` }));
}

const routing: Sub = {
  command: {
    name: 'eval routing',
    summary:
      'expert load per layer, category-by-category routing similarity, and the experts of each token of a text',
    usage:
      'grin eval routing --model DIR [--data FILE.jsonl] [--text TEXT] [--seq-len N] [--max-tokens-per-category N] [--out DIR]',
    flags: {
      model,
      data: {
        kind: 'string',
        help: 'labelled JSONL {"text", "category"} (default: the Brown corpus by genre)',
      },
      text: {
        kind: 'string',
        help: 'text whose tokens are listed with their experts',
        default: 'The jury said the election was conducted well.',
      },
      'seq-len': int('tokens per window (default: min(256, context))', 2),
      'max-tokens-per-category': int('tokens routed per category', 1, 4096),
      out: { kind: 'string', help: 'directory that receives routing/*.json (default: the run directory)' },
      dtype,
    },
    run: async () => 0,
  },
  async run(flags) {
    const docs = flags.data
      ? readDocuments(needFile('routing', flags, 'data', 'labelled texts'))
      : brownDocuments();
    const { runDir, model, tokenizer } = open('routing', flags);
    const outDir = (flags.out as string | undefined) ?? runDir;
    const { load, similarity } = routingAnalysis(model, tokenizer, docs, {
      seqLen: flags['seq-len'] as number | undefined,
      maxTokensPerCategory: flags['max-tokens-per-category'] as number,
      runDir: outDir,
      progress: progressLine('categories'),
    });
    const tokens = tokenRouting(model, tokenizer, flags.text as string, {
      out: join(outDir, 'routing', 'tokens.json'),
    });
    say(
      `expert load (max over balanced, per layer): ${load.maxOverBalanced.map((v) => v.toFixed(2)).join(' ')}`,
    );
    const C = similarity.categories.length;
    const offDiagonal = similarity.average.flatMap((row, i) => row.filter((_, j) => j !== i));
    if (C > 1)
      say(
        `categories: ${C}; mean cosine similarity between different categories ${(offDiagonal.reduce((a, b) => a + b, 0) / offDiagonal.length).toFixed(3)}`,
      );
    say(
      `tokens of ${JSON.stringify(tokens.text)}: ${tokens.tokens.map((t) => `${t.text.trim() || t.piece}:${t.experts[0]!.join('+')}`).join(' ')} (layer 0)`,
    );
    say(`wrote ${join(outDir, 'routing')}/{expert-load,category-similarity,tokens}.json`);
    return 0;
  },
};

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
    run: async () => 0,
  },
  async run(flags) {
    let config: GrinConfig = {
      ...defaultGrinConfig,
      ...shapeOf(defaultTrainConfig.model),
      vocabSize: defaultTrainConfig.data.vocabSize,
    };
    let out = flags.out as string | undefined;
    const given = flags.model as string | undefined;
    if (given) {
      try {
        const dir = resolveModelDir(given);
        config = parseConfig(
          JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')),
          join(dir, 'config.json'),
        );
        out ??= join(dir !== given ? given : dir, 'eval', 'throughput.json');
      } catch (error) {
        throw new CliError(`eval throughput: ${(error as Error).message}`);
      }
    }
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

function shapeOf(m: typeof defaultTrainConfig.model) {
  return {
    hiddenSize: m.hiddenSize,
    intermediateSize: m.intermediateSize,
    numHiddenLayers: m.numLayers,
    numAttentionHeads: m.numHeads,
    numKeyValueHeads: m.numKvHeads,
    headDim: m.hiddenSize / m.numHeads,
    numLocalExperts: m.numExperts,
    numExpertsPerTok: m.topK,
    slidingWindow: m.slidingWindow,
    router: m.router,
  };
}

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
  summary: `evaluate a model: ${Object.keys(subs).join(', ')} ('grin eval help SUB' for one's flags)`,
  usage: Object.values(subs)
    .map((s) => s.command.usage)
    .join('\n       '),
  // `grin eval [SUB] --help` is rendered before a subcommand is chosen, so it lists every flag,
  // each with the subcommands that take it.
  flags: unionOfFlags(),
  async run(argv) {
    const [name, ...rest] = argv;
    if (name === 'help' || name === undefined) {
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

export type { Sub as EvalSubcommand };
