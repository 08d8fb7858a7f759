// Safetensors from bytes already in memory (a fetch() in a browser page, a Buffer): the same header
// validation as the file reader (parseHeader) and the same decoding (decodeTensor), with no node:fs,
// so the dashboard reads checkpoints in the page through this package instead of a parser of its own.
// Test: cd packages/tensor && npx vitest run src/io
import { type DecodedArray, decodeTensor } from './safetensors-decode.js';
import {
  type AnySafetensorsDType,
  MAX_HEADER_BYTES,
  parseHeader,
  SafetensorsError,
} from './safetensors-format.js';

export interface InMemoryTensor {
  dtype: AnySafetensorsDType;
  shape: number[];
  /** Decoded: F16/BF16 widened to f32, I64 narrowed to int32. */
  data: DecodedArray;
}

/** Every tensor of a safetensors file held in `bytes`, validated before anything is trusted. */
export function parseSafetensorsBytes(
  bytes: Uint8Array,
  source = 'safetensors bytes',
): { metadata: Record<string, string>; tensors: Map<string, InMemoryTensor> } {
  if (bytes.length < 8)
    throw new SafetensorsError(
      source,
      undefined,
      `is ${bytes.length} bytes; expected at least the 8-byte header length`,
    );
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES))
    throw new SafetensorsError(
      source,
      undefined,
      `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES} byte limit`,
    );
  const headerBytes = Number(headerLength);
  if (8 + headerBytes > bytes.length)
    throw new SafetensorsError(
      source,
      undefined,
      `header length ${headerBytes} runs past the end of the ${bytes.length}-byte file (expected <= ${bytes.length - 8})`,
    );
  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerBytes));
  } catch {
    throw new SafetensorsError(source, undefined, 'header is not valid UTF-8; expected UTF-8 JSON');
  }
  const dataStart = 8 + headerBytes;
  const { metadata, entries } = parseHeader(source, headerText, bytes.length - dataStart);
  const tensors = new Map<string, InMemoryTensor>();
  for (const [name, entry] of entries) {
    // A copy into a fresh buffer: the data section need not be aligned for a typed-array view.
    const own = bytes.slice(dataStart + entry.begin, dataStart + entry.end);
    tensors.set(name, {
      dtype: entry.dtype,
      shape: [...entry.shape],
      data: decodeTensor(source, name, entry.dtype, own) as DecodedArray,
    });
  }
  return { metadata, tensors };
}
