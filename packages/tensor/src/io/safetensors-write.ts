// Writing safetensors files atomically: everything is validated first, then the header and each tensor
// are streamed to a temp file in the order given (one tensor's bytes in memory at a time), fsynced and
// renamed over the target, so a crash never leaves a half-written file. The header is padded with
// spaces to a multiple of 8 bytes, as the reference implementation does. Test: npx vitest run src/io
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { f32ArrayToBf16Bits, f32ArrayToF16Bits } from './half-float.js';
import {
  type AnySafetensorsDType,
  assertLittleEndianHost,
  checkShape,
  DTYPE_BYTES,
  formatShape,
  isSafetensorsDType,
  METADATA_KEY,
  SafetensorsError,
} from './safetensors-format.js';

export type TensorData =
  | Float32Array
  | Float64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint16Array
  | Uint8Array
  | BigInt64Array;

/** F16/BF16 take a Float32Array (rounded to nearest even) or raw Uint16Array bits; I64 takes an Int32Array too. */
export interface TensorEntry {
  dtype: AnySafetensorsDType;
  shape: readonly number[];
  data: TensorData;
}

export type TensorEntries =
  | Record<string, TensorEntry>
  | ReadonlyArray<readonly [string, TensorEntry]>
  | ReadonlyMap<string, TensorEntry>;

/** A validated tensor whose bytes are produced only when it is written. */
export interface PreparedTensor {
  name: string;
  dtype: AnySafetensorsDType;
  shape: number[];
  byteLength: number;
  bytes(): Uint8Array;
}

const viewBytes = (data: TensorData) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

function widenInt32(data: Int32Array): Uint8Array {
  const halves = new Int32Array(data.length * 2);
  for (let i = 0; i < data.length; i++) {
    halves[2 * i] = data[i]!;
    halves[2 * i + 1] = data[i]! >> 31;
  }
  return viewBytes(halves);
}

type Encoder = (data: TensorData) => Uint8Array;
// Which typed arrays each dtype accepts, and how they become little-endian bytes.
const ENCODERS: Record<AnySafetensorsDType, [string, (data: TensorData) => boolean, Encoder][]> = {
  F32: [['Float32Array', (d) => d instanceof Float32Array, viewBytes]],
  F64: [['Float64Array', (d) => d instanceof Float64Array, viewBytes]],
  I32: [['Int32Array', (d) => d instanceof Int32Array, viewBytes]],
  I16: [['Int16Array', (d) => d instanceof Int16Array, viewBytes]],
  I8: [['Int8Array', (d) => d instanceof Int8Array, viewBytes]],
  U16: [['Uint16Array', (d) => d instanceof Uint16Array, viewBytes]],
  U8: [['Uint8Array', (d) => d instanceof Uint8Array, viewBytes]],
  BOOL: [['Uint8Array of 0/1', (d) => d instanceof Uint8Array, viewBytes]],
  F16: [
    [
      'Float32Array',
      (d) => d instanceof Float32Array,
      (d) => viewBytes(f32ArrayToF16Bits(d as Float32Array)),
    ],
    ['Uint16Array of raw bits', (d) => d instanceof Uint16Array, viewBytes],
  ],
  BF16: [
    [
      'Float32Array',
      (d) => d instanceof Float32Array,
      (d) => viewBytes(f32ArrayToBf16Bits(d as Float32Array)),
    ],
    ['Uint16Array of raw bits', (d) => d instanceof Uint16Array, viewBytes],
  ],
  I64: [
    ['BigInt64Array', (d) => d instanceof BigInt64Array, viewBytes],
    ['Int32Array', (d) => d instanceof Int32Array, (d) => widenInt32(d as Int32Array)],
  ],
};

function entryList(entries: TensorEntries): [string, TensorEntry][] {
  if (Array.isArray(entries) || entries instanceof Map)
    return [...(entries as Iterable<[string, TensorEntry]>)];
  return Object.entries(entries as Record<string, TensorEntry>);
}

function prepareOne(path: string, name: string, entry: TensorEntry): PreparedTensor {
  const { dtype, shape, data } = entry ?? {};
  if (!isSafetensorsDType(dtype)) {
    const known = Object.keys(DTYPE_BYTES).join(', ');
    throw new SafetensorsError(path, name, `has dtype ${JSON.stringify(dtype)}; expected one of ${known}`);
  }
  const elements = checkShape(path, name, shape);
  const accepted = ENCODERS[dtype];
  const encoder = accepted.find(([, matches]) => ArrayBuffer.isView(data) && matches(data));
  if (!encoder) {
    const kind = ArrayBuffer.isView(data) ? data.constructor.name : typeof data;
    const expected = accepted.map(([label]) => label).join(' or ');
    throw new SafetensorsError(path, name, `is ${dtype} but its data is ${kind}; expected ${expected}`);
  }
  if (BigInt(data.length) !== elements) {
    throw new SafetensorsError(
      path,
      name,
      `has shape ${formatShape(shape)} (${elements} elements) but its data has ${data.length}`,
    );
  }
  if (dtype === 'BOOL') {
    const index = (data as Uint8Array).findIndex((value) => value > 1);
    if (index >= 0)
      throw new SafetensorsError(path, name, `(BOOL) element ${index} is ${data[index]}; expected 0 or 1`);
  }
  const encode = encoder[2];
  return {
    name,
    dtype,
    shape: [...shape],
    byteLength: data.length * DTYPE_BYTES[dtype],
    bytes: () => encode(data),
  };
}

/** Validates names, dtypes, shapes and data up front, so a bad entry fails before any file is touched. */
export function prepareTensors(path: string, entries: TensorEntries): PreparedTensor[] {
  const seen = new Set<string>();
  return entryList(entries).map(([name, entry]) => {
    if (typeof name !== 'string' || name === '' || name === METADATA_KEY) {
      throw new SafetensorsError(
        path,
        String(name),
        `is not a valid name; expected a non-empty string other than ${METADATA_KEY}`,
      );
    }
    if (seen.has(name)) throw new SafetensorsError(path, name, 'appears twice; names must be unique');
    seen.add(name);
    return prepareOne(path, name, entry);
  });
}

export function checkMetadata(path: string, metadata: unknown): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new SafetensorsError(
      path,
      undefined,
      `metadata is ${JSON.stringify(metadata)}; expected an object of strings`,
    );
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new SafetensorsError(path, undefined, `metadata '${key}' is ${typeof value}; expected a string`);
    }
  }
  return metadata as Record<string, string>;
}

// writeSync takes at most 2 GiB - 1 per call.
const MAX_IO_CHUNK = 1 << 30;

export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(MAX_IO_CHUNK, bytes.length - done));
}

/** Best effort: some platforms and filesystems cannot fsync a directory. */
export function fsyncDirectory(directory: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(directory, 'r');
    fsyncSync(fd);
  } catch {
    // The rename already happened; losing it on power failure is the most a failure here can cost.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Writes path via a temp file in the same directory: fill, fsync, rename over path, fsync the directory. */
export function writeFileAtomic(path: string, fill: (fd: number) => void): void {
  const tempPath = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fd: number | undefined = openSync(tempPath, 'wx');
  try {
    fill(fd);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tempPath, path);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tempPath, { force: true });
    throw error;
  }
  fsyncDirectory(dirname(path));
}

/** The header bytes: JSON in entry order, space-padded so the data section starts 8-byte aligned. */
export function encodeHeader(tensors: PreparedTensor[], metadata?: Record<string, string>): Uint8Array {
  // Built by hand rather than from one object: JS objects would hoist integer-like names to the front.
  const fields: string[] = [];
  if (metadata !== undefined) fields.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const { name, dtype, shape, byteLength } of tensors) {
    const entry = { dtype, shape, data_offsets: [offset, offset + byteLength] };
    fields.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    offset += byteLength;
  }
  const json = Buffer.from(`{${fields.join(',')}}`, 'utf8');
  const padded = Buffer.alloc(8 + Math.ceil(json.length / 8) * 8, ' ');
  padded.writeBigUInt64LE(BigInt(padded.length - 8), 0);
  json.copy(padded, 8);
  return padded;
}

export function writePrepared(
  path: string,
  tensors: PreparedTensor[],
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(path, (fd) => {
    writeAll(fd, encodeHeader(tensors, metadata));
    for (const tensor of tensors) writeAll(fd, tensor.bytes());
  });
}

export function writeSafetensors(
  path: string,
  entries: TensorEntries,
  metadata?: Record<string, string>,
): void {
  assertLittleEndianHost(path);
  const checkedMetadata = checkMetadata(path, metadata);
  writePrepared(path, prepareTensors(path, entries), checkedMetadata);
}
