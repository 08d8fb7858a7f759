// The data plane's frame header and hello: round trips (offsets past 4 GiB, non-ASCII keys),
// incomplete input (null: wait for more), and what a corrupt stream or a stranger's hello gives.
// Test: cd packages/parallel && npx vitest run src/wire
import { describe, expect, it } from 'vitest';
import {
  decodeHeader,
  decodeHello,
  encodeHeader,
  encodeHello,
  type FrameHeader,
  FrameKind,
  MAX_TOKEN_BYTES,
} from './wire.js';

const headers: FrameHeader[] = [
  {
    kind: FrameKind.data,
    key: 'world/all_reduce#7/rs1',
    descriptor: 'f32[2,3]',
    byteLength: 24,
    offset: 0,
    length: 24,
  },
  {
    kind: FrameKind.data,
    key: 'dp.ü/p2p/0->1#3',
    descriptor: 'f64',
    byteLength: 2 ** 33 + 8,
    offset: 2 ** 32 + 16,
    length: 4 << 20,
  },
  { kind: FrameKind.refuse, key: 'wrong run token', descriptor: '', byteLength: 0, offset: 0, length: 0 },
  { kind: FrameKind.goodbye, key: '', descriptor: '', byteLength: 0, offset: 0, length: 0 },
];

describe('data-plane wire format', () => {
  it.each(headers)('header round trip: $key', (header) => {
    const bytes = encodeHeader(header);
    expect(bytes.length % 8).toBe(0);
    // Decoded from the middle of a larger buffer, as the reader does.
    const stream = new Uint8Array(bytes.length + 13);
    stream.set(bytes, 5);
    expect(decodeHeader(stream, 5, 5 + bytes.length)).toEqual({ header, size: bytes.length });
    for (const cut of [0, 7, 31, bytes.length - 1]) expect(decodeHeader(stream, 5, 5 + cut)).toBeNull();
  });

  it('a corrupt header is an error, not a wait', () => {
    const bytes = encodeHeader(headers[0]!);
    const badKind = Uint8Array.from(bytes);
    badKind[4] = 9;
    expect(() => decodeHeader(badKind, 0, badKind.length)).toThrow(/corrupt frame header .*kind 9/);
    const badSize = Uint8Array.from(bytes);
    badSize[0] = 8;
    expect(() => decodeHeader(badSize, 0, badSize.length)).toThrow(/corrupt frame header \(size 8/);
  });

  it('hello round trip, and what a stranger sends', () => {
    const hello = encodeHello(3, 'run-token-123');
    expect(decodeHello(hello)).toEqual({ rank: 3, token: Buffer.from('run-token-123'), size: hello.length });
    expect(decodeHello(hello.subarray(0, 5))).toBeNull();
    expect(decodeHello(hello.subarray(0, hello.length - 1))).toBeNull();
    expect(decodeHello(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual({ error: 'not a grin data-plane hello' });
    const long = Buffer.from(hello);
    long.writeUInt32LE(MAX_TOKEN_BYTES + 1, 16);
    expect(decodeHello(long)).toEqual({ error: `a token of ${MAX_TOKEN_BYTES + 1} bytes` });
    const future = Buffer.from(hello);
    future.writeUInt32LE(2, 8);
    expect(decodeHello(future)).toEqual({ error: 'data-plane version 2, this rank speaks 1' });
  });
});
