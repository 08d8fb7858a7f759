// The safetensors format (https://github.com/huggingface/safetensors): dtypes, the error type, and the
// up-front validation of a parsed header. File layout: u64 little-endian header length N, N bytes of
// UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}},
// then the data section; offsets are relative to its start. Test: npx vitest run src/io

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'BOOL';
/** Also readable and writable, as the plain typed array of the same kind. */
export type SafetensorsExtraDType = 'U8' | 'I8' | 'I16' | 'U16';
export type AnySafetensorsDType = SafetensorsDType | SafetensorsExtraDType;

export const DTYPE_BYTES: Readonly<Record<AnySafetensorsDType, number>> = {
  F64: 8,
  I64: 8,
  F32: 4,
  I32: 4,
  F16: 2,
  BF16: 2,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export function isSafetensorsDType(value: unknown): value is AnySafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value);
}

/** The same limit as the reference implementation: a bigger header is corruption, not a model. */
export const MAX_HEADER_BYTES = 100_000_000;
export const METADATA_KEY = '__metadata__';

/** A value for an error message: at most 200 characters, and no stack overflow on deep nesting. */
export function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    return 'a value nested too deeply to print';
  }
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
  constructor(
    readonly path: string,
    readonly tensor: string | undefined,
    problem: string,
  ) {
    super(`${path}: ${tensor === undefined ? '' : `tensor '${tensor}' `}${problem}`);
  }
}

export interface TensorInfo {
  dtype: AnySafetensorsDType;
  shape: number[];
  byteLength: number;
}

/** A validated header entry; begin/end are relative to the data section. */
export interface HeaderEntry extends TensorInfo {
  begin: number;
  end: number;
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Typed-array views over file bytes assume the host shares the format's little-endian byte order. */
export function assertLittleEndianHost(path: string): void {
  if (!hostIsLittleEndian) {
    throw new SafetensorsError(
      path,
      undefined,
      'this host is big-endian; safetensors IO here needs little-endian',
    );
  }
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Element count as a bigint so absurd shapes cannot overflow silently. Throws on a bad dim. */
export function checkShape(path: string, name: string, shape: unknown): bigint {
  if (!Array.isArray(shape)) {
    throw new SafetensorsError(path, name, `has shape ${preview(shape)}; expected an array of dims`);
  }
  let elements = 1n;
  for (const dim of shape) {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      throw new SafetensorsError(
        path,
        name,
        `has shape ${preview(shape)}; every dim must be a non-negative integer`,
      );
    }
    elements *= BigInt(dim);
  }
  return elements;
}

function parseEntry(path: string, name: string, raw: unknown, dataBytes: number): HeaderEntry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError(path, name, `header entry is ${preview(raw)}; expected an object`);
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  for (const [key, value] of [
    ['dtype', dtype],
    ['shape', shape],
    ['data_offsets', offsets],
  ] as const) {
    if (value === undefined) {
      throw new SafetensorsError(
        path,
        name,
        `header entry lacks '${key}'; expected dtype, shape, data_offsets`,
      );
    }
  }
  if (!isSafetensorsDType(dtype)) {
    const known = Object.keys(DTYPE_BYTES).join(', ');
    throw new SafetensorsError(path, name, `has unknown dtype ${preview(dtype)}; expected one of ${known}`);
  }
  const elements = checkShape(path, name, shape);
  const dims = shape as number[];
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((offset) => Number.isSafeInteger(offset) && offset >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw new SafetensorsError(
      path,
      name,
      `has data_offsets ${preview(offsets)}; expected [begin, end], integers with 0 <= begin <= end`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataBytes) {
    throw new SafetensorsError(
      path,
      name,
      `has data_offsets [${begin},${end}] but the data section holds only ${dataBytes} bytes (truncated file?)`,
    );
  }
  const expectedBytes = elements * BigInt(DTYPE_BYTES[dtype]);
  if (expectedBytes !== BigInt(end - begin)) {
    throw new SafetensorsError(
      path,
      name,
      `has shape ${formatShape(dims)} (${dtype}: ${expectedBytes} bytes) but data_offsets span ${end - begin} bytes`,
    );
  }
  return { dtype, shape: dims, byteLength: end - begin, begin, end };
}

function parseMetadata(path: string, raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  const valid =
    typeof raw === 'object' &&
    !Array.isArray(raw) &&
    Object.values(raw as object).every((value) => typeof value === 'string');
  if (!valid) {
    throw new SafetensorsError(
      path,
      undefined,
      `__metadata__ is ${preview(raw)}; expected an object of string to string`,
    );
  }
  return { ...(raw as Record<string, string>) };
}

/** Validates a whole header (everything except the data bytes themselves). */
export function parseHeader(
  path: string,
  headerText: string,
  dataBytes: number,
): { metadata: Record<string, string>; entries: Map<string, HeaderEntry> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(headerText);
  } catch (error) {
    throw new SafetensorsError(path, undefined, `header is not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SafetensorsError(path, undefined, `header is ${preview(parsed)}; expected a JSON object`);
  }
  const metadata = parseMetadata(path, (parsed as Record<string, unknown>)[METADATA_KEY]);
  const entries = new Map<string, HeaderEntry>();
  for (const [name, raw] of Object.entries(parsed)) {
    if (name !== METADATA_KEY) entries.set(name, parseEntry(path, name, raw, dataBytes));
  }
  // Overlap check on non-empty ranges sorted by start; gaps are tolerated on read.
  const sorted = [...entries].filter(([, entry]) => entry.end > entry.begin);
  sorted.sort(([, a], [, b]) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const [previousName, previous] = sorted[i - 1]!;
    const [name, entry] = sorted[i]!;
    if (entry.begin < previous.end) {
      throw new SafetensorsError(
        path,
        name,
        `has data_offsets [${entry.begin},${entry.end}] overlapping tensor '${previousName}' at ` +
          `[${previous.begin},${previous.end}]; tensors must not share bytes`,
      );
    }
  }
  return { metadata, entries };
}
