// `grin eval ppl|mc|routing`: the analyses of @grin-moe/eval that load a model (a model directory,
// or a run directory whose newest checkpoint is used) and write JSON into its run directory unless
// --out says otherwise: eval/perplexity.json, eval/mc-<file>.json, eval/category-similarity.json,
// routing/expert-load.json, routing/token-routing.json (the names the dashboard reads). The output
// path is checked writable before any work.
// Test: cd apps/trainer && npx vitest run src/commands/eval
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import {
  MC_FORMATS,
  type McFormat,
  multipleChoice,
  perplexity,
  readDocuments,
  routingAnalysis,
  type TextDocument,
  tokenRouting,
} from '@grin-moe/eval';
import { type GrinModel, loadModel, loadTokenizer, type Tokenizer } from '@grin-moe/model-grin';
import { CliError, type CommandSpec, type FlagSpec, type ParsedFlags } from '../args.js';
import { loadBrown } from '../data/brown.js';
import { isHubModelId, resolveModelSource } from '../model-source.js';
import { checkOutputFile, prepareOutputDir } from '../output-path.js';

/** One `grin eval` analysis: its flags (for parsing and help) and what it does with them. */
export interface EvalSubcommand {
  command: CommandSpec;
  run(flags: ParsedFlags): Promise<number>;
}
type Sub = EvalSubcommand;

const model: FlagSpec = {
  kind: 'string',
  help: 'model directory, a run directory (its newest checkpoint), or a Hub id ORG/NAME[@REV]',
};
const dtype: FlagSpec = { kind: 'string', help: 'compute dtype, f32 or f64', default: 'f32' };
export const int = (help: string, min: number, value?: number): FlagSpec => ({
  kind: 'number',
  integer: true,
  min,
  help,
  ...(value !== undefined ? { default: value } : {}),
});

export const say = (line: string) => process.stdout.write(`${line}\n`);

/** A counter redrawn in place on a terminal; silent when stderr is a file or pipe. */
const progressLine = (label: string) => (done: number, total: number) => {
  if (process.stderr.isTTY) process.stderr.write(`\r${label} ${done}/${total}${done === total ? '\n' : ''}`);
};

/**
 * The model directory, its run directory (where results go; runs/hub/ORG--NAME for a Hub id, never
 * the HF cache) and the loaded model and tokenizer.
 */
async function open(
  name: string,
  flags: ParsedFlags,
): Promise<{ runDir: string; model: GrinModel; tokenizer: Tokenizer }> {
  const given = flags.model as string | undefined;
  if (!given) throw new CliError(`eval ${name}: --model DIR is required`);
  const kind = flags.dtype as string;
  if (kind !== 'f32' && kind !== 'f64')
    throw new CliError(`eval ${name}: --dtype must be f32 or f64, got '${kind}'`);
  const hub = isHubModelId(given);
  const dir = await resolveModelSource(given, { command: `eval ${name}`, dtype: kind });
  try {
    const runDir = hub
      ? join('runs', 'hub', given.replace(/[/@]/g, '--'))
      : dir !== given
        ? given
        : /[/\\]checkpoints[/\\]step-\d+[/\\]?$/.test(dir)
          ? dirname(dirname(dir))
          : dir;
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

export const ppl: Sub = {
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
  },
  async run(flags) {
    const data = needFile('ppl', flags, 'data', 'the text to score');
    const { runDir, model, tokenizer } = await open('ppl', flags);
    const out = (flags.out as string | undefined) ?? join(runDir, 'eval', 'perplexity.json');
    checkOutputFile(out, 'eval ppl --out'); // before the work, not after it
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

export const mc: Sub = {
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
    const { runDir, model, tokenizer } = await open('mc', flags);
    const out =
      (flags.out as string | undefined) ?? join(runDir, 'eval', `mc-${basename(data, extname(data))}.json`);
    checkOutputFile(out, 'eval mc --out');
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

export const routing: Sub = {
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
      out: {
        kind: 'string',
        help: 'directory that receives routing/expert-load.json, routing/token-routing.json and eval/category-similarity.json (default: the run directory)',
      },
      dtype,
    },
  },
  async run(flags) {
    const docs = flags.data
      ? readDocuments(needFile('routing', flags, 'data', 'labelled texts'))
      : brownDocuments();
    const { runDir, model, tokenizer } = await open('routing', flags);
    const outDir = (flags.out as string | undefined) ?? runDir;
    for (const sub of ['routing', 'eval']) prepareOutputDir(join(outDir, sub), 'eval routing --out');
    const { load, similarity } = routingAnalysis(model, tokenizer, docs, {
      seqLen: flags['seq-len'] as number | undefined,
      maxTokensPerCategory: flags['max-tokens-per-category'] as number,
      runDir: outDir,
      progress: progressLine('categories'),
    });
    const tokens = tokenRouting(model, tokenizer, flags.text as string, {
      out: join(outDir, 'routing', 'token-routing.json'),
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
    say(
      `wrote ${join(outDir, 'routing', 'expert-load.json')}, ${join(outDir, 'eval', 'category-similarity.json')}, ${join(outDir, 'routing', 'token-routing.json')}`,
    );
    return 0;
  },
};
