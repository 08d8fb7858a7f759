// The byte layout of the socket data plane (socket-transport.ts). A connection opens with a hello
// from the reading side (magic, version, its rank, the run token); the writing side answers with an
// accept or a refuse frame, then sends data frames and finally a goodbye. The reading side sends
// nothing more on its connection but, when its rank fails, an abort frame whose key carries the
// failure (JSON {rank, cause}): it is the only frame that goes that way. A frame is a header
// (little-endian, padded to 8 bytes) followed by `length` payload bytes: the tensor's own memory,
// never copied into the header. Test: cd packages/parallel && npx vitest run src/wire.test.ts

export const FrameKind = { data: 1, accept: 2, refuse: 3, goodbye: 4, abort: 5 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export interface FrameHeader {
  kind: FrameKind;
  /** Which message the chunk belongs to (for refuse: the reason; for abort: the failure as JSON). */
  key: string;
  descriptor: string;
  /** Bytes of the whole message, where this chunk starts in it, and the chunk's payload bytes. */
  byteLength: number;
  offset: number;
  length: number;
}

const FIXED_BYTES = 32;
/** Longest header a reader accepts: keys and descriptors are short; more is a corrupt stream. */
export const MAX_HEADER_BYTES = 16 * 1024;
const KINDS = new Set<number>(Object.values(FrameKind));

const align8 = (n: number) => Math.ceil(n / 8) * 8;

function writeU64(view: DataView, at: number, n: number): void {
  view.setUint32(at, n % 2 ** 32, true);
  view.setUint32(at + 4, Math.floor(n / 2 ** 32), true);
}

function readU64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
}

export function encodeHeader(header: FrameHeader): Buffer {
  const key = Buffer.from(header.key);
  const descriptor = Buffer.from(header.descriptor);
  const size = align8(FIXED_BYTES + key.length + descriptor.length);
  if (size > MAX_HEADER_BYTES)
    throw new Error(`wire: header of ${size} bytes exceeds ${MAX_HEADER_BYTES} (key '${header.key}')`);
  const out = Buffer.alloc(size);
  const view = new DataView(out.buffer, out.byteOffset, size);
  view.setUint32(0, size, true);
  view.setUint8(4, header.kind);
  view.setUint16(6, key.length, true);
  view.setUint16(8, descriptor.length, true);
  view.setUint32(12, header.length, true);
  writeU64(view, 16, header.byteLength);
  writeU64(view, 24, header.offset);
  key.copy(out, FIXED_BYTES);
  descriptor.copy(out, FIXED_BYTES + key.length);
  return out;
}

/**
 * The header starting at bytes[at], with its size in bytes; null while fewer than all of its
 * bytes are in (bytes[at..end)). A header no writer of this file makes is an Error.
 */
export function decodeHeader(
  bytes: Uint8Array,
  at: number,
  end: number,
): { header: FrameHeader; size: number } | null {
  if (end - at < FIXED_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, end - at);
  const size = view.getUint32(0, true);
  const kind = view.getUint8(4);
  const keyBytes = view.getUint16(6, true);
  const descriptorBytes = view.getUint16(8, true);
  if (
    !KINDS.has(kind) ||
    size !== align8(FIXED_BYTES + keyBytes + descriptorBytes) ||
    size > MAX_HEADER_BYTES
  )
    throw new Error(
      `wire: corrupt frame header (size ${size}, kind ${kind}, key ${keyBytes} bytes, descriptor ${descriptorBytes} bytes)`,
    );
  if (end - at < size) return null;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + at + FIXED_BYTES, keyBytes + descriptorBytes);
  return {
    size,
    header: {
      kind: kind as FrameKind,
      key: text.toString('utf8', 0, keyBytes),
      descriptor: text.toString('utf8', keyBytes),
      length: view.getUint32(12, true),
      byteLength: readU64(view, 16),
      offset: readU64(view, 24),
    },
  };
}

const MAGIC = Buffer.from('GRINDATA');
const VERSION = 1;
const HELLO_FIXED = 20;
/** A longer token is refused unread: the hello is the only thing an unauthenticated peer can send. */
export const MAX_TOKEN_BYTES = 1024;

export function encodeHello(rank: number, token: string): Buffer {
  const secret = Buffer.from(token);
  const out = Buffer.alloc(HELLO_FIXED + secret.length);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(VERSION, 8);
  out.writeUInt32LE(rank, 12);
  out.writeUInt32LE(secret.length, 16);
  secret.copy(out, HELLO_FIXED);
  return out;
}

export type Hello = { rank: number; token: Buffer; size: number } | { error: string };

/** The hello at the start of bytes; null while incomplete. */
export function decodeHello(bytes: Buffer): Hello | null {
  const known = Math.min(bytes.length, MAGIC.length);
  if (!bytes.subarray(0, known).equals(MAGIC.subarray(0, known)))
    return { error: 'not a grin data-plane hello' };
  if (bytes.length < HELLO_FIXED) return null;
  const version = bytes.readUInt32LE(8);
  if (version !== VERSION) return { error: `data-plane version ${version}, this rank speaks ${VERSION}` };
  const tokenBytes = bytes.readUInt32LE(16);
  if (tokenBytes > MAX_TOKEN_BYTES) return { error: `a token of ${tokenBytes} bytes` };
  if (bytes.length < HELLO_FIXED + tokenBytes) return null;
  return {
    rank: bytes.readUInt32LE(12),
    token: bytes.subarray(HELLO_FIXED, HELLO_FIXED + tokenBytes),
    size: HELLO_FIXED + tokenBytes,
  };
}
