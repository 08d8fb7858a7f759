// `grin generate --model DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-p P]
// [--seed S]`: streams a continuation to stdout as tokens arrive, using the model directory's
// tokenizer (loadTokenizer). --prompt-ids takes token ids directly (no tokenizer needed). Stray
// words and a prompt past max_position_embeddings are refused; non-finite logits stop it (exit 1).
// --model also takes a Hub id (model-source.ts); --chat / --system use the model's chat template.
// Test: cd apps/trainer && npx vitest run src/commands/generate
import {
  createStreamDecoder,
  generate,
  loadConfig,
  loadModel,
  loadTokenizer,
  type Tokenizer,
} from '@grin-moe/model-grin';
import { Generator } from '@grin-moe/tensor';
import { CliError, type Command, parseFlags } from '../args.js';
import { chatPrompt } from '../chat-prompt.js';
import { resolveModelSource } from '../model-source.js';

function parsePromptIds(text: string): number[] {
  const ids = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
  if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 0)) {
    throw new CliError(
      `generate: --prompt-ids must be non-negative integers separated by commas, got '${text}'`,
    );
  }
  return ids;
}

/** A prompt past the context is refused; one that leaves no room for the new tokens is warned about. */
export function checkPromptLength(
  context: number,
  promptTokens: number,
  maxNewTokens: number,
  dir: string,
): void {
  if (promptTokens > context)
    throw new CliError(
      `generate: the prompt is ${promptTokens} tokens, longer than the model's max_position_embeddings (${context}, ${dir}/config.json); shorten it`,
    );
  if (promptTokens + maxNewTokens > context)
    process.stderr.write(
      `grin: warning: the prompt (${promptTokens} tokens) + --max-new-tokens ${maxNewTokens} pass max_position_embeddings (${context}); tokens past position ${context} are outside what the model was built for\n`,
    );
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'continue a prompt with a GRIN / PhiMoE checkpoint, streaming tokens to stdout',
  usage:
    'grin generate --model DIR|ORG/NAME[@REV] --prompt TEXT [--chat] [--system TEXT] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]',
  flags: {
    model: {
      kind: 'string',
      help: 'model directory, run directory, or Hugging Face Hub id ORG/NAME[@REV] (fetched into the HF cache)',
    },
    prompt: { kind: 'string', help: 'prompt text (encoded with the model directory tokenizer)' },
    'prompt-ids': { kind: 'string', help: 'prompt as token ids, e.g. 1,450,4996 (instead of --prompt)' },
    'max-new-tokens': {
      kind: 'number',
      help: 'most tokens to generate',
      default: 128,
      integer: true,
      min: 1,
    },
    temperature: { kind: 'number', help: 'sampling temperature; 0 is greedy', default: 0, min: 0 },
    'top-p': { kind: 'number', help: 'nucleus sampling mass in (0, 1]', default: 1, min: 0 },
    seed: { kind: 'number', help: 'random seed for sampling', default: 0, integer: true, min: 0 },
    dtype: { kind: 'string', help: 'compute dtype, f32 or f64', default: 'f32' },
    chat: { kind: 'boolean', help: "wrap --prompt in the model's own chat template as a user message" },
    system: { kind: 'string', help: 'a system message before the user message (implies --chat)' },
  },
  async run(argv) {
    const { flags, positional } = parseFlags(generateCommand, argv);
    if (positional.length)
      throw new CliError(
        `generate: unexpected words ${positional.map((w) => `'${w}'`).join(' ')}; quote a prompt of several words: --prompt "the jury said"`,
      );
    const given = flags.model as string | undefined;
    if (!given) throw new CliError(`generate: --model DIR is required; usage: ${generateCommand.usage}`);
    const text = flags.prompt as string | undefined;
    const idsText = flags['prompt-ids'] as string | undefined;
    if ((text === undefined) === (idsText === undefined))
      throw new CliError('generate: give exactly one of --prompt TEXT or --prompt-ids IDS');
    const topP = flags['top-p'] as number;
    if (!(topP > 0 && topP <= 1)) throw new CliError(`generate: --top-p must be in (0, 1], got ${topP}`);
    const dtype = flags.dtype as string;
    if (dtype !== 'f32' && dtype !== 'f64')
      throw new CliError(`generate: --dtype must be f32 or f64, got '${dtype}'`);
    if ((flags.chat || flags.system !== undefined) && text === undefined)
      throw new CliError('generate: --chat and --system need --prompt TEXT');
    const dir = await resolveModelSource(given, { command: 'generate', dtype });
    let tokenizer: Tokenizer | null = null;
    if (text !== undefined) {
      try {
        tokenizer = loadTokenizer(dir);
      } catch (error) {
        throw new CliError(`generate: ${(error as Error).message}; or pass --prompt-ids 1,2,3`);
      }
    }
    const chat = Boolean(flags.chat) || flags.system !== undefined;
    const promptText = tokenizer && chat ? chatPrompt(dir, text!, flags.system as string | undefined) : text;
    const prompt = tokenizer ? tokenizer.encode(promptText!) : parsePromptIds(idsText!);
    const maxNewTokens = flags['max-new-tokens'] as number;
    checkPromptLength(loadConfig(dir).maxPositionEmbeddings, prompt.length, maxNewTokens, dir);
    const model = loadModel(dir, { dtype });
    try {
      if (tokenizer && tokenizer.vocabSize > model.config.vocabSize) {
        throw new CliError(
          `generate: ${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${model.config.vocabSize}`,
        );
      }
      // Holds partial UTF-8 characters back and keeps SentencePiece spaces right.
      const stream = tokenizer ? createStreamDecoder(tokenizer) : null;
      let count = 0;
      generate(model, prompt, {
        maxNewTokens,
        temperature: flags.temperature as number,
        topP,
        generator: new Generator(flags.seed as number),
        stopTokens: [...new Set([...model.config.eosTokenIds, ...(tokenizer?.stopIds ?? [])])],
        onToken: (token) => {
          process.stdout.write(stream ? stream.push(token) : `${count++ > 0 ? ' ' : ''}${token}`);
        },
      });
      if (stream) process.stdout.write(stream.flush());
      process.stdout.write('\n');
    } finally {
      model.dispose();
    }
    return 0;
  },
};
