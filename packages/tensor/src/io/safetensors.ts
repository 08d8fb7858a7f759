// Reading safetensors files: open reads only the 8-byte length and the JSON header and validates all of
// it; each tensor is then read from disk straight into its own fresh buffer (no whole-file read, no
// second copy for F32/F64/I32/U8). Writing lives in safetensors-write.ts, the format in
// safetensors-format.ts. Test: cd packages/tensor && npx vitest run src/io
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import {
  checkReadAs,
  type DecodedArray,
  decodeTensor,
  type ReadAs,
  type TensorArray,
} from './safetensors-decode.js';
import {
  assertLittleEndianHost,
  type HeaderEntry,
  MAX_HEADER_BYTES,
  parseHeader,
  SafetensorsError,
  type TensorInfo,
} from './safetensors-format.js';

export type { DecodedArray, ReadAs, TensorArray };

/** What both a single file and a sharded checkpoint offer. */
export interface TensorReader {
  readonly path: string;
  readonly metadata: Record<string, string>;
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  readBytes(name: string): Uint8Array;
  read(name: string, as?: 'decoded'): DecodedArray;
  read(name: string, as: 'bigint'): BigInt64Array;
  read(name: string, as: ReadAs): TensorArray;
  close(): void;
}

// readSync takes at most 2 GiB - 1 per call; 1 GiB chunks stay well inside that.
const MAX_IO_CHUNK = 1 << 30;

function readExactly(fd: number, target: Uint8Array, position: number, path: string, tensor?: string): void {
  let done = 0;
  while (done < target.length) {
    const count = Math.min(MAX_IO_CHUNK, target.length - done);
    const got = readSync(fd, target, done, count, position + done);
    if (got === 0) {
      const problem = `expected ${target.length} bytes at offset ${position} but the file ended after ${done}`;
      throw new SafetensorsError(path, tensor, `${problem} (did it shrink since it was opened?)`);
    }
    done += got;
  }
}

/** Names sharing the longest prefix with the missing one come first: those are the likely typos. */
export function describeMissing(path: string, name: string, available: string[]): SafetensorsError {
  const sharedPrefix = (other: string) => {
    let i = 0;
    while (i < other.length && i < name.length && other[i] === name[i]) i++;
    return i;
  };
  const nearest = [...available].sort((a, b) => sharedPrefix(b) - sharedPrefix(a)).slice(0, 5);
  const listed = nearest.map((candidate) => `'${candidate}'`).join(', ');
  return new SafetensorsError(
    path,
    name,
    `does not exist; the file has ${available.length} tensors${available.length ? `, e.g. ${listed}` : ''}`,
  );
}

export class SafetensorsFile implements TensorReader {
  private fd: number | undefined;

  constructor(
    readonly path: string,
    fd: number,
    readonly metadata: Record<string, string>,
    private readonly entries: Map<string, HeaderEntry>,
    /** Absolute file position of the data section (8 + header length). */
    private readonly dataStart: number,
  ) {
    this.fd = fd;
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const { dtype, shape, byteLength } = this.entry(name);
    return { dtype, shape: [...shape], byteLength };
  }

  /** The raw little-endian bytes in a fresh ArrayBuffer of exactly byteLength (so 8-byte aligned). */
  readBytes(name: string): Uint8Array {
    const entry = this.entry(name);
    if (this.fd === undefined)
      throw new SafetensorsError(this.path, name, 'cannot be read: the file was closed');
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(new ArrayBuffer(entry.byteLength));
    } catch (error) {
      throw new SafetensorsError(
        this.path,
        name,
        `needs ${entry.byteLength} bytes: ${(error as Error).message}`,
      );
    }
    readExactly(this.fd, bytes, this.dataStart + entry.begin, this.path, name);
    return bytes;
  }

  read(name: string, as?: 'decoded'): DecodedArray;
  read(name: string, as: 'bigint'): BigInt64Array;
  read(name: string, as: ReadAs): TensorArray;
  read(name: string, as: ReadAs = 'decoded'): TensorArray {
    const { dtype } = this.entry(name);
    checkReadAs(this.path, name, dtype, as);
    return decodeTensor(this.path, name, dtype, this.readBytes(name), as);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Lets callers write `using file = openSafetensors(path)`. */
  [Symbol.dispose](): void {
    this.close();
  }

  private entry(name: string): HeaderEntry {
    const entry = this.entries.get(name);
    if (!entry) throw describeMissing(this.path, name, this.names());
    return entry;
  }
}

/** Opens and validates a safetensors file; tensor data is read later, one tensor at a time. */
export function openSafetensors(path: string): SafetensorsFile {
  assertLittleEndianHost(path);
  const fd = openSync(path, 'r');
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new SafetensorsError(path, undefined, 'is not a regular file (a directory?)');
    const fileBytes = stat.size;
    if (fileBytes < 8) {
      throw new SafetensorsError(
        path,
        undefined,
        `is ${fileBytes} bytes; expected at least the 8-byte header length`,
      );
    }
    const lengthBytes = Buffer.alloc(8);
    readExactly(fd, lengthBytes, 0, path);
    const headerLength = lengthBytes.readBigUInt64LE(0);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsError(
        path,
        undefined,
        `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES} byte limit`,
      );
    }
    const headerBytes = Number(headerLength);
    if (8 + headerBytes > fileBytes) {
      throw new SafetensorsError(
        path,
        undefined,
        `header length ${headerBytes} runs past the end of the ${fileBytes}-byte file (expected <= ${fileBytes - 8})`,
      );
    }
    const header = Buffer.alloc(headerBytes);
    readExactly(fd, header, 8, path);
    let headerText: string;
    try {
      headerText = new TextDecoder('utf-8', { fatal: true }).decode(header);
    } catch {
      throw new SafetensorsError(path, undefined, 'header is not valid UTF-8; expected UTF-8 JSON');
    }
    const dataStart = 8 + headerBytes;
    const { metadata, entries } = parseHeader(path, headerText, fileBytes - dataStart);
    return new SafetensorsFile(path, fd, metadata, entries, dataStart);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}
