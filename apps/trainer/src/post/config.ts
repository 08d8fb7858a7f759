// The configuration of `grin sft` and `grin dpo`: the embedded defaults (fine-tune the Brown model of
// `pnpm train` on the committed Brown chat set, then DPO on its preference set, each a few minutes on
// 2 CPU cores), a JSON or YAML file on top (--config), then flags. Errors name the source and field.
// Test: cd apps/trainer && npx vitest run src/post/post.test.ts
import { readConfigFile } from '../train/config.js';

export type PostKind = 'sft' | 'dpo';

export interface PostConfig {
  kind: PostKind;
  run: { name: string; out: string; seed: number };
  data: {
    /** Chat JSONL (sft) or preference JSONL (dpo); null: the embedded Brown set. */
    file: string | null;
    /** The model to start from: a model directory, a run directory (its newest checkpoint) or a Hub id. */
    initFrom: string;
    /** DPO's frozen reference; null: the initial policy (initFrom). */
    reference: string | null;
    /** Longest sequence; longer conversations are cut there (and dropped if no assistant token is left). */
    seqLen: number;
    /** sft: pack conversations into rows of seqLen tokens, attention kept inside each (else pad). */
    pack: boolean;
    validationFraction: number;
  };
  optim: {
    steps: number;
    batchSize: number;
    lr: number;
    minLr: number;
    warmupSteps: number;
    weightDecay: number;
    beta1: number;
    beta2: number;
    clip: number;
    lbAlpha: number;
  };
  dpo: { beta: number };
  /** GRIN's post-training regularizers, in training steps only. */
  regularize: { neftuneAlpha: number; expertDropout: number };
  eval: { every: number };
  checkpoint: { every: number; keep: number };
  device: 'cpu' | 'cuda';
  dtype: 'f32' | 'bf16';
  timeBudgetSeconds: number;
}

/** Where `pnpm train` leaves the default Brown model, and where the default SFT run leaves its own. */
export const BROWN_BASE_RUN = 'runs/brown-grin';
export const BROWN_SFT_RUN = 'runs/brown-sft';

const common = {
  optim: {
    batchSize: 16,
    minLr: 0,
    warmupSteps: 10,
    weightDecay: 0,
    beta1: 0.9,
    beta2: 0.95,
    clip: 1,
    lbAlpha: 0.01,
  },
  regularize: { neftuneAlpha: 5, expertDropout: 0.1 },
  checkpoint: { every: 50, keep: 2 },
  device: 'cpu' as const,
  dtype: 'f32' as const,
  timeBudgetSeconds: 0,
};

export function defaultPostConfig(kind: PostKind): PostConfig {
  return kind === 'sft'
    ? {
        ...structuredClone(common),
        kind,
        run: { name: 'brown-sft', out: 'runs', seed: 1234 },
        data: {
          file: null,
          initFrom: BROWN_BASE_RUN,
          reference: null,
          seqLen: 96,
          pack: true,
          validationFraction: 0.15,
        },
        optim: { ...common.optim, steps: 150, lr: 1e-3 },
        dpo: { beta: 0.1 },
        eval: { every: 50 },
      }
    : {
        ...structuredClone(common),
        kind,
        run: { name: 'brown-dpo', out: 'runs', seed: 1234 },
        data: {
          file: null,
          initFrom: BROWN_SFT_RUN,
          reference: null,
          seqLen: 96,
          pack: false,
          validationFraction: 0.15,
        },
        optim: { ...common.optim, steps: 80, lr: 1e-3, batchSize: 8 },
        dpo: { beta: 0.1 },
        eval: { every: 20 },
      };
}

export class PostConfigError extends Error {}

type Spec =
  | ['int' | 'number' | 'string' | 'nullableString' | 'boolean', number?, number?]
  | ['enum', ...string[]];

const SCHEMA: Record<string, Record<string, Spec>> = {
  run: { name: ['string'], out: ['string'], seed: ['int', 0] },
  data: {
    file: ['nullableString'],
    initFrom: ['string'],
    reference: ['nullableString'],
    seqLen: ['int', 2],
    pack: ['boolean'],
    validationFraction: ['number', 0, 0.5],
  },
  optim: {
    steps: ['int', 1],
    batchSize: ['int', 1],
    lr: ['number', 0],
    minLr: ['number', 0],
    warmupSteps: ['int', 0],
    weightDecay: ['number', 0],
    beta1: ['number', 0, 0.9999],
    beta2: ['number', 0, 0.99999],
    clip: ['number', 0],
    lbAlpha: ['number', 0],
  },
  dpo: { beta: ['number', 0] },
  regularize: { neftuneAlpha: ['number', 0], expertDropout: ['number', 0, 0.95] },
  eval: { every: ['int', 1] },
  checkpoint: { every: ['int', 1], keep: ['int', 1] },
};
const TOP: Record<string, Spec> = {
  device: ['enum', 'cpu', 'cuda'],
  dtype: ['enum', 'f32', 'bf16'],
  timeBudgetSeconds: ['number', 0],
};

function check(source: string, path: string, spec: Spec, value: unknown): unknown {
  const fail = (want: string) => {
    throw new PostConfigError(`${source}: ${path} (${JSON.stringify(value)}) must be ${want}`);
  };
  const [type, ...bounds] = spec;
  if (type === 'enum') {
    if (!(bounds as string[]).includes(value as string)) fail(`one of ${bounds.join(', ')}`);
  } else if (type === 'string') {
    if (typeof value !== 'string' || !value) fail('a non-empty string');
  } else if (type === 'boolean') {
    if (typeof value !== 'boolean') fail('true or false');
  } else if (type === 'nullableString') {
    if (value !== null && (typeof value !== 'string' || !value)) fail('a non-empty string or null');
  } else {
    const [min, max] = bounds as (number | undefined)[];
    if (typeof value !== 'number' || !Number.isFinite(value)) fail('a number');
    if (type === 'int' && !Number.isInteger(value)) fail('a whole number');
    if (min !== undefined && (value as number) < min) fail(`>= ${min}`);
    if (max !== undefined && (value as number) > max) fail(`<= ${max}`);
  }
  return value;
}

/** `base` with the fields of `patch` (a parsed --config file, or flags as a patch), each checked. */
export function mergePostConfig(base: PostConfig, patch: unknown, source: string): PostConfig {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch))
    throw new PostConfigError(`${source}: the config must be an object`);
  const out = structuredClone(base) as unknown as Record<string, Record<string, unknown> | unknown>;
  for (const [key, value] of Object.entries(patch)) {
    if (TOP[key]) {
      out[key] = check(source, key, TOP[key], value);
      continue;
    }
    const section = SCHEMA[key];
    if (!section)
      throw new PostConfigError(
        `${source}: unknown section '${key}'; valid: ${[...Object.keys(SCHEMA), ...Object.keys(TOP)].join(', ')}`,
      );
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new PostConfigError(`${source}: ${key} must be an object`);
    for (const [field, v] of Object.entries(value)) {
      const spec = section[field];
      if (!spec)
        throw new PostConfigError(
          `${source}: unknown field '${key}.${field}'; valid: ${Object.keys(section)
            .map((f) => `${key}.${f}`)
            .join(', ')}`,
        );
      (out[key] as Record<string, unknown>)[field] = check(source, `${key}.${field}`, spec, v);
    }
  }
  const merged = out as unknown as PostConfig;
  const rule = (ok: boolean, message: string) => {
    if (!ok) throw new PostConfigError(`${source}: ${message}`);
  };
  rule(merged.optim.lr > 0, `optim.lr (${merged.optim.lr}) must be > 0`);
  rule(
    merged.optim.minLr <= merged.optim.lr,
    `optim.minLr (${merged.optim.minLr}) must be <= optim.lr (${merged.optim.lr})`,
  );
  rule(
    merged.optim.warmupSteps <= merged.optim.steps,
    `optim.warmupSteps (${merged.optim.warmupSteps}) must be <= optim.steps (${merged.optim.steps})`,
  );
  rule(
    merged.dtype !== 'bf16' || merged.device === 'cuda',
    'dtype bf16 needs device cuda; use dtype f32 on the CPU',
  );
  rule(
    !/[/\\\0]/.test(merged.run.name) && !['.', '..'].includes(merged.run.name),
    `run.name ${JSON.stringify(merged.run.name)} must be one directory name; put the parent in run.out (--out)`,
  );
  rule(
    merged.kind === 'dpo' || merged.data.reference === null,
    'data.reference (--reference) is for dpo only',
  );
  rule(
    merged.kind === 'sft' || !merged.data.pack,
    'data.pack is for sft only (dpo sums log-probs per sequence over padded rows)',
  );
  return merged;
}

export function readPostConfigFile(path: string): unknown {
  try {
    return readConfigFile(path);
  } catch (error) {
    throw new PostConfigError((error as Error).message);
  }
}
