// `grin logits --model DIR --ids FILE.json [--grad] --out FILE.safetensors`: runs a GRIN / PhiMoE
// checkpoint in eval mode on token ids and writes logits [B,S,V], the mean next-token loss [1] and,
// with --grad, grad.<checkpoint name> for every parameter (DESIGN.md "Reference files"), so our
// numbers can be compared with a PyTorch dump. Test: cd apps/trainer && npx vitest run src/commands/logits
import { readFileSync } from 'node:fs';
import { type GrinModel, idsTensor, loadModel, nextTokenLoss } from '@grin-moe/model-grin';
import { noGrad, saveTensors, type Tensor, tidy, zerosLike } from '@grin-moe/tensor';
import { CliError, type Command, parseFlags } from '../args.js';
import { resolveModelSource } from '../model-source.js';
import { checkOutputFile } from '../output-path.js';

/** Validates a JSON array of equal-length rows of token ids in [0, vocabSize). */
export function parseIds(json: unknown, file: string, vocabSize: number): number[][] {
  if (!Array.isArray(json) || json.length === 0) {
    throw new CliError(
      `${file}: expected a non-empty JSON array of rows of token ids ([[1, 2, 3], ...]), got ${brief(json)}`,
    );
  }
  const width = Array.isArray(json[0]) ? json[0].length : -1;
  json.forEach((row, r) => {
    if (!Array.isArray(row))
      throw new CliError(`${file}: row ${r} is ${brief(row)}; expected an array of token ids`);
    if (row.length === 0) throw new CliError(`${file}: row ${r} is empty`);
    if (row.length !== width)
      throw new CliError(
        `${file}: rows have different lengths (row 0 has ${width}, row ${r} has ${row.length}); pad them to one length`,
      );
    row.forEach((id, c) => {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new CliError(
          `${file}: row ${r}, column ${c} is ${brief(id)}; token ids must be integers in [0, ${vocabSize}) (the model's vocab_size is ${vocabSize})`,
        );
      }
    });
  });
  return json as number[][];
}

function brief(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** logits, loss and (optionally) every gradient, keyed as the output file names them. */
export function computeLogits(model: GrinModel, rows: number[][], withGrad: boolean): Record<string, Tensor> {
  const ids = idsTensor(rows);
  model.eval();
  const run = () => {
    const { logits_BSV } = model.forward(ids);
    const loss = nextTokenLoss(logits_BSV, ids);
    return { logits_BSV, loss };
  };
  if (!withGrad) {
    const { logits_BSV, loss } = noGrad(() => tidy(run));
    return { logits: logits_BSV, loss: loss.reshape([1]) };
  }
  const { logits_BSV, loss } = tidy(run);
  loss.backward();
  const out: Record<string, Tensor> = { logits: logits_BSV, loss: noGrad(() => loss.reshape([1])) };
  for (const [name, p] of model.namedParameters()) {
    // An expert that no token picked gets no gradient: its gradient is zero.
    out[`grad.${name}`] = p.grad ?? zerosLike(p);
  }
  return out;
}

export const logitsCommand: Command = {
  name: 'logits',
  summary:
    'write logits, the next-token loss and (--grad) every parameter gradient of a checkpoint on token ids',
  usage:
    'grin logits --model DIR|ORG/NAME[@REV] --ids FILE.json [--grad] [--dtype f32|f64] --out FILE.safetensors',
  flags: {
    model: {
      kind: 'string',
      help: 'model directory (config.json + model.safetensors or a sharded index), run directory, or Hub id ORG/NAME[@REV]',
    },
    ids: { kind: 'string', help: 'JSON array of equal-length rows of token ids, [[1, 2, 3], ...]' },
    grad: { kind: 'boolean', help: 'also write grad.<checkpoint name> for every parameter (eval mode)' },
    dtype: { kind: 'string', help: 'compute dtype, f32 or f64', default: 'f32' },
    out: { kind: 'string', help: 'output .safetensors file' },
  },
  async run(argv) {
    const { flags, positional } = parseFlags(logitsCommand, argv);
    if (positional.length) throw new CliError(`logits: unexpected argument '${positional[0]}'`);
    for (const name of ['model', 'ids', 'out'] as const) {
      if (!flags[name]) throw new CliError(`logits: --${name} is required; usage: ${logitsCommand.usage}`);
    }
    const dtype = flags.dtype as string;
    if (dtype !== 'f32' && dtype !== 'f64')
      throw new CliError(`logits: --dtype must be f32 or f64, got '${dtype}'`);
    const idsFile = flags.ids as string;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(idsFile, 'utf8'));
    } catch (error) {
      throw new CliError(`${idsFile}: cannot read token ids (${(error as Error).message})`);
    }
    checkOutputFile(flags.out as string, 'logits --out');
    const model = loadModel(await resolveModelSource(flags.model as string, { command: 'logits', dtype }), {
      dtype,
    });
    try {
      const rows = parseIds(json, idsFile, model.config.vocabSize);
      if (rows[0]!.length < 2)
        throw new CliError(
          `${idsFile}: the next-token loss needs rows of at least 2 ids, got ${rows[0]!.length}`,
        );
      const tensors = computeLogits(model, rows, Boolean(flags.grad));
      saveTensors(flags.out as string, tensors, { format: 'pt' });
      const [B, S, V] = tensors.logits!.shape;
      process.stderr.write(
        `logits [${B},${S},${V}] ${dtype}, loss ${tensors.loss!.item().toFixed(6)}${flags.grad ? `, ${model.parameters().length} gradients` : ''} -> ${flags.out}\n`,
      );
      for (const t of Object.values(tensors)) t.dispose();
    } finally {
      model.dispose();
    }
    return 0;
  },
};
