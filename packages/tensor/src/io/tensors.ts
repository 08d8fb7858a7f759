// Tensors <-> safetensors files: the bridge between the low-level reader/writer (names, dtype
// strings, typed arrays) and Tensor handles. Checkpoints of the model and optimizer go through here.
// Test: cd packages/tensor && npx vitest run src/io/tensors
import type { DType } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { tensor } from '../ops/creation.js';
import type { TensorReader } from './safetensors.js';
import type { AnySafetensorsDType } from './safetensors-format.js';
import { type TensorEntry, writeSafetensors } from './safetensors-write.js';
import { openCheckpoint, writeShardedSafetensors } from './sharded.js';

const toFile: Record<DType, AnySafetensorsDType> = {
  f32: 'F32',
  f64: 'F64',
  bf16: 'BF16',
  i32: 'I32',
  bool: 'BOOL',
};

function entry(t: Tensor): TensorEntry {
  return { dtype: toFile[t.dtype], shape: [...t.shape], data: t.toArray() as never };
}

export function saveTensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  writeSafetensors(
    path,
    Object.entries(tensors).map(([name, t]) => [name, entry(t)] as const),
    metadata,
  );
}

/** Writes a (possibly sharded) Hugging Face checkpoint directory. */
export function saveCheckpoint(
  dir: string,
  tensors: Record<string, Tensor>,
  options: { maxShardBytes?: number; metadata?: Record<string, string> } = {},
): string[] {
  return writeShardedSafetensors(
    dir,
    Object.entries(tensors).map(([name, t]) => [name, entry(t)] as const),
    options,
  ).files;
}

export interface LoadOptions {
  device?: string;
  /** Float tensors become this dtype (default: f32 for F16/BF16/F32, f64 for F64). */
  floatDType?: 'f32' | 'f64' | 'bf16';
}

/** Reads one tensor: F16/BF16 decode to f32 (or stay raw bf16), I64 narrows to i32 with a range check. */
export function readTensor(reader: TensorReader, name: string, options: LoadOptions = {}): Tensor {
  const { dtype, shape } = reader.info(name);
  const device = options.device ?? 'cpu';
  if (dtype === 'BF16' && options.floatDType === 'bf16') {
    return tensor(reader.read(name, 'raw') as Uint16Array, { shape, dtype: 'bf16', device });
  }
  const data = reader.read(name);
  if (dtype === 'F64')
    return tensor(data, { shape, dtype: options.floatDType === 'f32' ? 'f32' : 'f64', device });
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') {
    return tensor(data, { shape, dtype: options.floatDType === 'f64' ? 'f64' : 'f32', device });
  }
  if (dtype === 'BOOL') return tensor(data, { shape, dtype: 'bool', device });
  return tensor(data, { shape, dtype: 'i32', device });
}

/** Every tensor of a file or checkpoint directory (single or sharded). */
export function loadTensors(path: string, options: LoadOptions = {}): Record<string, Tensor> {
  const reader = openCheckpoint(path);
  try {
    return Object.fromEntries(reader.names().map((name) => [name, readTensor(reader, name, options)]));
  } finally {
    reader.close();
  }
}
