// Loading and saving GRIN / Phi-3.5-MoE checkpoint directories: config.json plus model.safetensors
// or a sharded index (BF16/F16/F32/F64 on disk). Loading accepts the original naming and the
// transformers v5 fused layout (mlp.router, mlp.experts.gate_up_proj [E,2I,D] = w1 then w3,
// mlp.experts.down_proj [E,D,I]); saving writes the original naming. Shape legend: E experts,
// I intermediate size, D hidden size. Every weight is checked finite as it is read (the error
// names the file and tensor). Test: cd packages/model-grin && npx vitest run src/checkpoint
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Checkpoint,
  openCheckpoint,
  type Tensor,
  tensor,
  writeShardedSafetensors,
} from '@grin-moe/tensor';
import { ConfigError, configToJson, type GrinConfig, parseConfig } from './config.js';
import { assertFitsInHostMemory } from './memory.js';
import { GrinModel, type ModelDType } from './model.js';
import { parameterShapes } from './modules/names.js';

export class CheckpointError extends Error {}

export function loadConfig(dir: string): GrinConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new ConfigError(`${path}: not found; a model directory needs config.json`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  return parseConfig(json, path);
}

export interface LoadModelOptions {
  dtype?: ModelDType;
  device?: string;
  /** Skip the host-memory check (the estimate is rough). */
  skipMemoryCheck?: boolean;
}

/** Where one parameter comes from: a whole tensor, or one expert's rows of a v5 fused tensor. */
interface Source {
  name: string;
  expectedShape: number[];
  rows?: { expert: number; start: number; count: number };
}

const FUSED =
  /^model\.layers\.(\d+)\.mlp\.(router\.weight|gate\.weight|experts\.gate_up_proj|experts\.down_proj)$/;

/** Maps every original parameter name to the tensor that holds it in this file. */
function planSources(config: GrinConfig, reader: Checkpoint): Map<string, Source> {
  const { numLocalExperts: E, intermediateSize: I, hiddenSize: D } = config;
  const plan = new Map<string, Source>();
  const fusedLayers = new Set<number>();
  for (const name of reader.names()) {
    const m = FUSED.exec(name);
    if (m) fusedLayers.add(Number(m[1]));
  }
  for (const [name, shape] of parameterShapes(config)) {
    const m =
      /^model\.layers\.(\d+)\.block_sparse_moe\.(gate\.weight|experts\.(\d+)\.(w[123])\.weight)$/.exec(name);
    const layer = m ? Number(m[1]) : -1;
    if (!m || reader.has(name) || !fusedLayers.has(layer)) {
      plan.set(name, { name, expectedShape: shape });
      continue;
    }
    const prefix = `model.layers.${layer}.mlp`;
    if (m[2] === 'gate.weight') {
      const router = reader.has(`${prefix}.router.weight`)
        ? `${prefix}.router.weight`
        : `${prefix}.gate.weight`;
      plan.set(name, { name: router, expectedShape: shape });
    } else {
      const expert = Number(m[3]);
      const which = m[4];
      if (which === 'w2')
        plan.set(name, {
          name: `${prefix}.experts.down_proj`,
          expectedShape: [E, D, I],
          rows: { expert, start: 0, count: D },
        });
      else
        plan.set(name, {
          name: `${prefix}.experts.gate_up_proj`,
          expectedShape: [E, 2 * I, D],
          rows: { expert, start: which === 'w1' ? 0 : I, count: I },
        });
    }
  }
  return plan;
}

function checkPlan(dir: string, reader: Checkpoint, plan: Map<string, Source>): void {
  const problems: string[] = [];
  const used = new Set<string>();
  const reported = new Set<string>();
  for (const [name, source] of plan) {
    used.add(source.name);
    if (reported.has(source.name)) continue;
    const alias = source.name === name ? '' : ` (for ${name})`;
    if (!reader.has(source.name)) {
      problems.push(`missing: ${source.name}${alias}, expected shape [${source.expectedShape}]`);
      reported.add(source.name);
      continue;
    }
    const info = reader.info(source.name);
    if (info.shape.join() !== source.expectedShape.join()) {
      problems.push(
        `wrong shape: ${source.name} in ${fileOf(reader, source.name)} is [${info.shape}], expected [${source.expectedShape}]`,
      );
      reported.add(source.name);
    } else if (!['F32', 'F64', 'BF16', 'F16'].includes(info.dtype)) {
      problems.push(
        `wrong dtype: ${source.name} in ${fileOf(reader, source.name)} is ${info.dtype}, expected F32, F64, BF16 or F16`,
      );
      reported.add(source.name);
    }
  }
  for (const name of reader.names()) {
    if (!used.has(name))
      problems.push(`unexpected: ${name} in ${fileOf(reader, name)} [${reader.info(name).shape}]`);
  }
  if (problems.length > 0) {
    throw new CheckpointError(
      `${dir}: the checkpoint does not match config.json (${problems.length} problems):\n  ${problems.join('\n  ')}`,
    );
  }
}

const fileOf = (reader: Checkpoint, name: string) => reader.fileOf(name);

/**
 * Converts to the model dtype and checks every value is finite in the same pass: a NaN or an
 * infinity in the weights would otherwise give NaN logits (or token 0 forever) with exit 0.
 */
function toFiniteDType(
  data: ArrayLike<number>,
  dtype: ModelDType,
  where: () => string,
): Float32Array | Float64Array {
  const same = dtype === 'f64' ? data instanceof Float64Array : data instanceof Float32Array;
  const out = same
    ? (data as Float32Array | Float64Array)
    : dtype === 'f64'
      ? new Float64Array(data.length)
      : new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const value = data[i]!;
    // value - value is 0 for finite numbers and NaN for NaN and +-Infinity.
    if (value - value !== 0) {
      throw new CheckpointError(
        `${where()}: value ${value} at flat index ${i}; a checkpoint must hold finite weights (the file is damaged, or training diverged before it was saved)`,
      );
    }
    if (!same) out[i] = value;
  }
  return out;
}

/** Reads config.json and the weights; refuses a model that cannot fit in host memory on CPU. */
export function loadModel(dir: string, options: LoadModelOptions = {}): GrinModel {
  const { dtype = 'f32', device = 'cpu' } = options;
  const config = loadConfig(dir);
  if (device === 'cpu' && !options.skipMemoryCheck) assertFitsInHostMemory(config, { dtype, source: dir });
  const reader = openCheckpoint(dir);
  try {
    const plan = planSources(config, reader);
    checkPlan(dir, reader, plan);
    const params = new Map<string, Tensor>();
    let fusedName = '';
    let fused: Float32Array | Float64Array | null = null;
    for (const [name, source] of plan) {
      const shape = source.expectedShape;
      if (!source.rows) {
        const data = reader.read(source.name) as ArrayLike<number>;
        const where = () => `${fileOf(reader, source.name)}: tensor '${source.name}' is not finite`;
        params.set(name, tensor(toFiniteDType(data, dtype, where), { shape, dtype, device }));
        continue;
      }
      if (fusedName !== source.name) {
        const fusedSource = source.name;
        fused = toFiniteDType(
          reader.read(fusedSource) as ArrayLike<number>,
          dtype,
          () => `${fileOf(reader, fusedSource)}: tensor '${fusedSource}' is not finite`,
        );
        fusedName = source.name;
      }
      const [, rowCount, columns] = shape as [number, number, number];
      const { expert, start, count } = source.rows;
      const begin = (expert * rowCount + start) * columns;
      params.set(
        name,
        tensor(fused!.slice(begin, begin + count * columns), { shape: [count, columns], dtype, device }),
      );
    }
    return new GrinModel(config, params, dtype, device);
  } finally {
    reader.close();
  }
}

export interface SaveModelOptions {
  dtype?: 'f32' | 'bf16' | 'f16';
  /** Start a new shard past this many bytes (default: transformers' 5 GB); sharded files get an index. */
  maxShardBytes?: number;
}

/** Writes config.json and the weights in the original naming (sharded with an index when large). */
export function saveModel(dir: string, model: GrinModel, options: SaveModelOptions = {}): string[] {
  const { dtype = 'f32' } = options;
  const fileDType = ({ f32: 'F32', bf16: 'BF16', f16: 'F16' } as const)[dtype];
  if (!fileDType)
    throw new RangeError(`saveModel: dtype must be 'f32', 'bf16' or 'f16', got '${dtype as string}'`);
  mkdirSync(dir, { recursive: true });
  const entries = model.namedParameters().map(([name, t]) => {
    const host = t.toArray();
    const data = host instanceof Float32Array ? host : Float32Array.from(host as ArrayLike<number>);
    return [name, { dtype: fileDType, shape: [...t.shape], data }] as const;
  });
  const torchDType = { f32: 'float32', bf16: 'bfloat16', f16: 'float16' }[dtype];
  writeFileSync(
    join(dir, 'config.json'),
    `${JSON.stringify(configToJson(model.config, { torch_dtype: torchDType }), null, 2)}\n`,
  );
  return writeShardedSafetensors(dir, entries, {
    maxShardBytes: options.maxShardBytes,
    metadata: { format: 'pt' },
  }).files;
}
