// Hugging Face checkpoints in a directory: one model.safetensors, or model-0000k-of-0000N.safetensors
// shards plus model.safetensors.index.json ({metadata: {total_size}, weight_map: {tensor: shard}}), as
// transformers' save_pretrained writes them (GRIN / Phi-3.5-MoE ship this way). The index is the commit
// point of a sharded write. Test: cd packages/tensor && npx vitest run src/io/sharded.test.ts
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DecodedArray,
  describeMissing,
  openSafetensors,
  type ReadAs,
  type SafetensorsFile,
  type TensorArray,
  type TensorReader,
} from './safetensors.js';
import { SafetensorsError, type TensorInfo } from './safetensors-format.js';
import {
  checkMetadata,
  fsyncDirectory,
  type PreparedTensor,
  prepareTensors,
  type TensorEntries,
  writeAll,
  writeFileAtomic,
  writePrepared,
} from './safetensors-write.js';

export const SINGLE_FILE_NAME = 'model.safetensors';
export const INDEX_FILE_NAME = 'model.safetensors.index.json';
/** transformers' save_pretrained default max_shard_size, "5GB" = 5 * 10^9 bytes. */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export interface ShardIndex {
  /** Path of the index file itself. */
  path: string;
  metadata: Record<string, unknown>;
  weightMap: Record<string, string>;
  /** Distinct shard file names, in order of first appearance in weight_map. */
  shards: string[];
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A shard must be a file directly inside the checkpoint directory, never a path out of it. */
const isPlainFileName = (name: string) => name !== '' && name !== '.' && name !== '..' && !/[/\\]/.test(name);

export function readShardIndex(dir: string): ShardIndex {
  const path = join(dir, INDEX_FILE_NAME);
  if (!existsSync(path))
    throw new SafetensorsError(path, undefined, 'does not exist; expected a sharded checkpoint index');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new SafetensorsError(path, undefined, `is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(parsed) || !isPlainObject(parsed.weight_map)) {
    throw new SafetensorsError(
      path,
      undefined,
      'expected an object with weight_map: {tensor name: shard file}',
    );
  }
  const metadata = parsed.metadata ?? {};
  if (!isPlainObject(metadata)) {
    throw new SafetensorsError(
      path,
      undefined,
      `metadata is ${JSON.stringify(metadata)}; expected an object`,
    );
  }
  const totalSize = metadata.total_size;
  if (totalSize !== undefined && !(Number.isSafeInteger(totalSize) && (totalSize as number) >= 0)) {
    throw new SafetensorsError(
      path,
      undefined,
      `metadata.total_size is ${JSON.stringify(totalSize)}; expected a byte count`,
    );
  }
  const weightMap: Record<string, string> = {};
  const shards: string[] = [];
  for (const [name, shard] of Object.entries(parsed.weight_map)) {
    if (typeof shard !== 'string' || !isPlainFileName(shard)) {
      throw new SafetensorsError(
        path,
        name,
        `maps to ${JSON.stringify(shard)}; expected a file name in ${dir}`,
      );
    }
    if (!shards.includes(shard)) {
      if (!existsSync(join(dir, shard))) {
        throw new SafetensorsError(path, name, `maps to shard '${shard}', which does not exist in ${dir}`);
      }
      shards.push(shard);
    }
    weightMap[name] = shard;
  }
  return { path, metadata, weightMap, shards };
}

/** A whole checkpoint directory behind the single-file reader API; reads are routed to the right shard. */
export class Checkpoint implements TensorReader {
  constructor(
    /** The directory (or the single file it was opened from). */
    readonly path: string,
    /** __metadata__ of the first shard, or of the single file. */
    readonly metadata: Record<string, string>,
    private readonly route: Map<string, SafetensorsFile>,
    private readonly files: SafetensorsFile[],
    readonly index: ShardIndex | undefined,
  ) {}

  names(): string[] {
    return [...this.route.keys()];
  }

  has(name: string): boolean {
    return this.route.has(name);
  }

  /** The file that holds a tensor. */
  fileOf(name: string): string {
    return this.file(name).path;
  }

  info(name: string): TensorInfo {
    return this.file(name).info(name);
  }

  readBytes(name: string): Uint8Array {
    return this.file(name).readBytes(name);
  }

  read(name: string, as?: 'decoded'): DecodedArray;
  read(name: string, as: 'bigint'): BigInt64Array;
  read(name: string, as: ReadAs): TensorArray;
  read(name: string, as: ReadAs = 'decoded'): TensorArray {
    return this.file(name).read(name, as);
  }

  close(): void {
    for (const file of this.files) file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private file(name: string): SafetensorsFile {
    const file = this.route.get(name);
    if (!file) throw describeMissing(this.path, name, this.names());
    return file;
  }
}

function openSingle(path: string, label: string): Checkpoint {
  const file = openSafetensors(path);
  const route = new Map(file.names().map((name) => [name, file] as const));
  return new Checkpoint(label, file.metadata, route, [file], undefined);
}

/**
 * Opens a checkpoint directory (or a single .safetensors file) and validates every header and the index.
 * When both an index and model.safetensors exist the index wins: a sharded write commits by writing its
 * index, so this is the newer one (and a single-file write removes the index only after its rename).
 */
export function openCheckpoint(dir: string): Checkpoint {
  if (statSync(dir).isFile()) return openSingle(dir, dir);
  if (!existsSync(join(dir, INDEX_FILE_NAME))) {
    if (existsSync(join(dir, SINGLE_FILE_NAME))) return openSingle(join(dir, SINGLE_FILE_NAME), dir);
    throw new SafetensorsError(dir, undefined, `holds neither ${SINGLE_FILE_NAME} nor ${INDEX_FILE_NAME}`);
  }
  const index = readShardIndex(dir);
  const files: SafetensorsFile[] = [];
  try {
    const byShard = new Map<string, SafetensorsFile>();
    for (const shard of index.shards) {
      const file = openSafetensors(join(dir, shard));
      files.push(file);
      byShard.set(shard, file);
    }
    const route = new Map<string, SafetensorsFile>();
    for (const [name, shard] of Object.entries(index.weightMap)) {
      const file = byShard.get(shard)!;
      if (!file.has(name)) {
        throw new SafetensorsError(
          index.path,
          name,
          `is mapped to shard '${shard}', which has no tensor of that name`,
        );
      }
      route.set(name, file);
    }
    return new Checkpoint(dir, files[0]?.metadata ?? {}, route, files, index);
  } catch (error) {
    for (const file of files) file.close();
    throw error;
  }
}

export interface ShardedWriteOptions {
  /** Start a new shard before a tensor that would push the current one past this; default 5 * 10^9. */
  maxShardBytes?: number;
  /** __metadata__ of every file; format: 'pt' is added by default because transformers requires it. */
  metadata?: Record<string, string>;
}

/** Greedy packing in the given order, like transformers: a tensor bigger than the limit gets its own shard. */
function packShards(tensors: PreparedTensor[], maxShardBytes: number): PreparedTensor[][] {
  const shards: PreparedTensor[][] = [[]];
  let currentBytes = 0;
  for (const tensor of tensors) {
    if (currentBytes + tensor.byteLength > maxShardBytes && shards.at(-1)!.length > 0) {
      shards.push([]);
      currentBytes = 0;
    }
    shards.at(-1)!.push(tensor);
    currentBytes += tensor.byteLength;
  }
  return shards;
}

/** Shard files named by an existing index, read leniently: this is only for cleaning up after ourselves. */
function previousShards(dir: string): string[] {
  try {
    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE_NAME), 'utf8'));
    return [...new Set(Object.values(index.weight_map) as unknown[])].filter(
      (shard): shard is string => typeof shard === 'string' && isPlainFileName(shard),
    );
  } catch {
    return [];
  }
}

function removeFiles(dir: string, names: string[]): void {
  for (const name of names) rmSync(join(dir, name), { force: true });
  fsyncDirectory(dir);
}

/**
 * Writes model.safetensors, or shards plus an index when the tensors exceed maxShardBytes. Each file is
 * written atomically; files of a previous checkpoint in dir that the new one does not use are removed.
 */
export function writeShardedSafetensors(
  dir: string,
  entries: TensorEntries,
  options: ShardedWriteOptions = {},
): { files: string[]; totalSize: number } {
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(Number.isSafeInteger(maxShardBytes) && maxShardBytes > 0)) {
    throw new SafetensorsError(
      dir,
      undefined,
      `maxShardBytes is ${maxShardBytes}; expected a positive integer`,
    );
  }
  const metadata = checkMetadata(dir, { format: 'pt', ...options.metadata })!;
  const tensors = prepareTensors(dir, entries);
  const totalSize = tensors.reduce((sum, tensor) => sum + tensor.byteLength, 0);
  const groups = packShards(tensors, maxShardBytes);
  mkdirSync(dir, { recursive: true });
  const oldShards = previousShards(dir);

  if (groups.length === 1) {
    writePrepared(join(dir, SINGLE_FILE_NAME), groups[0]!, metadata);
    // Only now is the old index stale; until here it still described a complete older checkpoint.
    removeFiles(dir, [INDEX_FILE_NAME, ...oldShards.filter((shard) => shard !== SINGLE_FILE_NAME)]);
    return { files: [SINGLE_FILE_NAME], totalSize };
  }

  // Overwriting shards under a live index could pair it with a mix of old and new shards after a crash.
  removeFiles(dir, [INDEX_FILE_NAME]);
  const count = String(groups.length).padStart(5, '0');
  const files = groups.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${count}.safetensors`);
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    writePrepared(join(dir, files[i]!), group, metadata);
    for (const tensor of group) weightMap[tensor.name] = files[i]!;
  });
  const sortedMap = Object.fromEntries(
    Object.keys(weightMap)
      .sort()
      .map((name) => [name, weightMap[name]]),
  );
  const indexJson = `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sortedMap }, null, 2)}\n`;
  writeFileAtomic(join(dir, INDEX_FILE_NAME), (fd) => writeAll(fd, Buffer.from(indexJson, 'utf8')));
  removeFiles(dir, [SINGLE_FILE_NAME, ...oldShards.filter((shard) => !files.includes(shard))]);
  return { files: [...files, INDEX_FILE_NAME], totalSize };
}
