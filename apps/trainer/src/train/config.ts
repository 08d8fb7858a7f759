// The training configuration: the embedded default (a small GRIN MoE for 2 CPU cores on the
// Brown corpus), a JSON or YAML file on top of it, then command-line flags on top of that.
// Every field is validated before anything runs; errors name the source, the field and what is
// allowed. Test: cd apps/trainer && npx vitest run src/train/config.test.ts
import { readFileSync } from 'node:fs';
import { routerNames } from '@grin-moe/router-sparsemixer';
import { parse as parseYaml } from 'yaml';

export interface TrainConfig {
  run: { name: string; out: string; seed: number };
  data: {
    source: 'brown' | 'file';
    /** What --data names: a text / JSONL file, a .parquet file, or a Hub dataset id ORG/NAME[@REV]. */
    file: string | null;
    /** Parquet and Hub datasets: the config (subset; null: the default files), split and text column. */
    datasetConfig: string | null;
    split: string;
    textColumn: string;
    validationFraction: number;
    seqLen: number;
    vocabSize: number;
    initFrom: string | null;
  };
  model: {
    hiddenSize: number;
    intermediateSize: number;
    numLayers: number;
    numHeads: number;
    numKvHeads: number;
    numExperts: number;
    topK: number;
    slidingWindow: number;
    router: string;
    routerJitter: number;
    inputJitter: number;
    initStd: number;
  };
  optim: {
    steps: number;
    batchSize: number;
    gradAccum: number;
    lr: number;
    minLr: number;
    warmupSteps: number;
    weightDecay: number;
    beta1: number;
    beta2: number;
    clip: number;
    lbMode: 'local' | 'global';
    lbAlpha: number;
    /** AdamW's moments for bf16 parameters: f32, or bf16 stored by stochastic rounding (less memory and traffic). */
    moments: 'f32' | 'bf16';
    /**
     * 'auto': on cuda in one process, the optimizer step runs on a side stream and overlaps the next
     * step's forward (the same results, bit for bit); 'off': it runs on the main stream.
     */
    overlap: 'auto' | 'off';
  };
  /**
   * GRIN's post-training regularizers, in training steps only (default off for pre-training):
   * NEFTune noise U(-1, 1) * alpha / sqrt(S * D) on the input embeddings, and dropout with this
   * probability on every expert's hidden activation. Both draw from the run's Philox stream.
   */
  regularize: { neftuneAlpha: number; expertDropout: number };
  eval: { every: number; batches: number };
  checkpoint: { every: number; keep: number };
  device: 'cpu' | 'cuda';
  /**
   * Parameter dtype. bf16 (cuda only): bf16 parameters, f32 master weights and moments in AdamW;
   * forward and backward compute in bf16 (router math and the loss in f32).
   */
  dtype: 'f32' | 'bf16';
  /** Stop (with a checkpoint) once this many seconds have passed; 0 = no limit. */
  timeBudgetSeconds: number;
}

// Sized by measurement on a 2-core machine: about 1400-2000 tokens/s, so 700 steps of 1024 tokens
// fit in the ten-minute budget with data preparation; a smaller, faster model learns more per
// second here than a wider one (see apps/trainer/README.md).
export const defaultTrainConfig: TrainConfig = {
  run: { name: 'brown-grin', out: 'runs', seed: 1234 },
  data: {
    source: 'brown',
    file: null,
    datasetConfig: null,
    split: 'train',
    textColumn: 'text',
    validationFraction: 0.1,
    seqLen: 64,
    vocabSize: 2048,
    initFrom: null,
  },
  model: {
    hiddenSize: 128,
    intermediateSize: 128,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 2,
    numExperts: 8,
    topK: 2,
    slidingWindow: 64,
    router: 'sparsemixer-v2',
    routerJitter: 0.01,
    inputJitter: 0.01,
    initStd: 0.02,
  },
  optim: {
    steps: 700,
    batchSize: 16,
    gradAccum: 1,
    lr: 1.5e-3,
    minLr: 1.5e-4,
    warmupSteps: 20,
    weightDecay: 0.01,
    beta1: 0.9,
    beta2: 0.95,
    clip: 1.0,
    lbMode: 'global',
    lbAlpha: 0.01,
    moments: 'f32',
    overlap: 'auto',
  },
  regularize: { neftuneAlpha: 0, expertDropout: 0 },
  eval: { every: 100, batches: 16 },
  checkpoint: { every: 100, keep: 2 },
  device: 'cpu',
  dtype: 'f32',
  timeBudgetSeconds: 480,
};

export class ConfigError extends Error {}

type Spec =
  | { type: 'int'; min?: number; max?: number }
  | { type: 'number'; min?: number; max?: number; exclusiveMin?: boolean }
  | { type: 'string' }
  | { type: 'nullableString' }
  | { type: 'enum'; values: readonly string[] };

const schema: Record<string, Record<string, Spec>> = {
  run: { name: { type: 'string' }, out: { type: 'string' }, seed: { type: 'int', min: 0 } },
  data: {
    source: { type: 'enum', values: ['brown', 'file'] },
    file: { type: 'nullableString' },
    datasetConfig: { type: 'nullableString' },
    split: { type: 'string' },
    textColumn: { type: 'string' },
    validationFraction: { type: 'number', min: 0, max: 0.5, exclusiveMin: true },
    seqLen: { type: 'int', min: 2 },
    vocabSize: { type: 'int', min: 260, max: 65536 },
    initFrom: { type: 'nullableString' },
  },
  model: {
    hiddenSize: { type: 'int', min: 8 },
    intermediateSize: { type: 'int', min: 1 },
    numLayers: { type: 'int', min: 1 },
    numHeads: { type: 'int', min: 1 },
    numKvHeads: { type: 'int', min: 1 },
    numExperts: { type: 'int', min: 1 },
    topK: { type: 'int', min: 1 },
    slidingWindow: { type: 'int', min: 1 },
    router: { type: 'string' },
    routerJitter: { type: 'number', min: 0 },
    inputJitter: { type: 'number', min: 0, max: 0.5 },
    initStd: { type: 'number', min: 0, exclusiveMin: true },
  },
  optim: {
    steps: { type: 'int', min: 1 },
    batchSize: { type: 'int', min: 1 },
    gradAccum: { type: 'int', min: 1 },
    lr: { type: 'number', min: 0, exclusiveMin: true },
    minLr: { type: 'number', min: 0 },
    warmupSteps: { type: 'int', min: 0 },
    weightDecay: { type: 'number', min: 0 },
    beta1: { type: 'number', min: 0, max: 0.9999 },
    beta2: { type: 'number', min: 0, max: 0.99999 },
    clip: { type: 'number', min: 0, exclusiveMin: true },
    lbMode: { type: 'enum', values: ['local', 'global'] },
    lbAlpha: { type: 'number', min: 0 },
    moments: { type: 'enum', values: ['f32', 'bf16'] },
    overlap: { type: 'enum', values: ['auto', 'off'] },
  },
  regularize: {
    neftuneAlpha: { type: 'number', min: 0 },
    expertDropout: { type: 'number', min: 0, max: 0.95 },
  },
  eval: { every: { type: 'int', min: 1 }, batches: { type: 'int', min: 1 } },
  checkpoint: { every: { type: 'int', min: 1 }, keep: { type: 'int', min: 1 } },
};

function checkValue(source: string, path: string, spec: Spec, value: unknown): unknown {
  const fail = (want: string) => {
    throw new ConfigError(`${source}: ${path} (${JSON.stringify(value)}) must be ${want}`);
  };
  switch (spec.type) {
    case 'int':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value))
        fail(`a ${spec.type === 'int' ? 'whole number' : 'number'}`);
      const v = value as number;
      if (spec.type === 'int' && !Number.isInteger(v)) fail('a whole number');
      const exclusive = spec.type === 'number' && spec.exclusiveMin;
      if (spec.min !== undefined && (exclusive ? v <= spec.min : v < spec.min))
        fail(`${exclusive ? '>' : '>='} ${spec.min}`);
      if (spec.max !== undefined && v > spec.max) fail(`<= ${spec.max}`);
      return v;
    }
    case 'string':
      if (typeof value !== 'string' || value.length === 0) fail('a non-empty string');
      return value;
    case 'nullableString':
      if (value !== null && (typeof value !== 'string' || value.length === 0))
        fail('a non-empty string or null');
      return value;
    case 'enum':
      if (typeof value !== 'string' || !spec.values.includes(value)) fail(`one of ${spec.values.join(', ')}`);
      return value;
  }
}

/** Merges a partial config (from a file or flags) into `base`, validating every field it sets. */
export function mergeConfig(base: TrainConfig, patch: unknown, source: string): TrainConfig {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch))
    throw new ConfigError(`${source}: the config must be an object`);
  const out = structuredClone(base) as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (key === 'device') {
      out.device = checkValue(source, 'device', { type: 'enum', values: ['cpu', 'cuda'] }, value);
      continue;
    }
    if (key === 'dtype') {
      out.dtype = checkValue(source, 'dtype', { type: 'enum', values: ['f32', 'bf16'] }, value);
      continue;
    }
    if (key === 'timeBudgetSeconds') {
      out.timeBudgetSeconds = checkValue(source, key, { type: 'number', min: 0 }, value);
      continue;
    }
    const section = schema[key];
    if (!section)
      throw new ConfigError(
        `${source}: unknown section '${key}'; valid: ${[...Object.keys(schema), 'device', 'dtype', 'timeBudgetSeconds'].join(', ')}`,
      );
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new ConfigError(`${source}: ${key} must be an object`);
    const target = out[key] as Record<string, unknown>;
    for (const [field, v] of Object.entries(value as Record<string, unknown>)) {
      const spec = section[field];
      if (!spec)
        throw new ConfigError(
          `${source}: unknown field '${key}.${field}'; valid: ${Object.keys(section)
            .map((f) => `${key}.${f}`)
            .join(', ')}`,
        );
      target[field] = checkValue(source, `${key}.${field}`, spec, v);
    }
  }
  return out as unknown as TrainConfig;
}

/** Cross-field rules, checked once everything is merged. */
export function validateConfig(c: TrainConfig, source = 'config'): TrainConfig {
  const m = c.model;
  const rule = (ok: boolean, message: string) => {
    if (!ok) throw new ConfigError(`${source}: ${message}`);
  };
  rule(
    m.hiddenSize % m.numHeads === 0,
    `model.numHeads (${m.numHeads}) must divide model.hiddenSize (${m.hiddenSize})`,
  );
  rule(
    (m.hiddenSize / m.numHeads) % 2 === 0,
    `model.hiddenSize / model.numHeads (${m.hiddenSize / m.numHeads}) must be even for RoPE`,
  );
  rule(
    m.numHeads % m.numKvHeads === 0,
    `model.numKvHeads (${m.numKvHeads}) must divide model.numHeads (${m.numHeads})`,
  );
  rule(m.topK <= m.numExperts, `model.topK (${m.topK}) must be <= model.numExperts (${m.numExperts})`);
  rule(
    routerNames().includes(m.router),
    `model.router '${m.router}' is unknown; valid routers: ${routerNames().join(', ')}`,
  );
  rule(c.optim.minLr <= c.optim.lr, `optim.minLr (${c.optim.minLr}) must be <= optim.lr (${c.optim.lr})`);
  rule(
    c.optim.warmupSteps <= c.optim.steps,
    `optim.warmupSteps (${c.optim.warmupSteps}) must be <= optim.steps (${c.optim.steps})`,
  );
  rule(
    c.data.source !== 'file' || c.data.file !== null,
    'data.file must name a file when data.source is "file"',
  );
  const d = c.data;
  rule(
    d.source === 'file' || (d.datasetConfig === null && d.split === 'train' && d.textColumn === 'text'),
    `data.datasetConfig, data.split and data.textColumn (--data-config, --data-split, --text-column) choose rows of a Parquet file or Hub dataset given with --data; the Brown corpus has none (got ${JSON.stringify({ datasetConfig: d.datasetConfig, split: d.split, textColumn: d.textColumn })})`,
  );
  // The run directory is --out/NAME: a name with separators or dots would write elsewhere.
  rule(
    !/[/\\\0]/.test(c.run.name) && c.run.name !== '.' && c.run.name !== '..',
    `run.name ${JSON.stringify(c.run.name)} must be one directory name (no '/', '\\', NUL, '.' or '..'); put the parent in run.out (--out)`,
  );
  rule(
    c.dtype !== 'bf16' || c.device === 'cuda',
    'dtype bf16 needs device cuda (bf16 is storage-only on the CPU backend); use dtype f32 on the CPU',
  );
  return c;
}

export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `${path}: cannot read the config file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  try {
    return /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      `${path}: not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(error as Error).message}`,
    );
  }
}
