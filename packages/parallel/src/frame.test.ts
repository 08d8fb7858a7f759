// The hand-written Frame codec against proto-loader's protobufjs codec for proto/collective.proto,
// both ways, and the 8-byte alignment of the data inside the encoded message.
// Test: cd packages/parallel && npx vitest run src/frame
import { loadSync } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, type Frame } from './frame.js';
import { protoPath } from './proto.js';

const method = (
  loadSync(protoPath('collective'), { longs: Number, defaults: true })['grin.parallel.Peer'] as Record<
    string,
    { requestSerialize(v: object): Buffer; requestDeserialize(b: Buffer): Record<string, unknown> }
  >
).Exchange!;

const cases: Frame[] = [
  { src: 0, key: '', dtype: '', byteLength: 0, offset: 0, data: new Uint8Array(0) },
  {
    src: 3,
    key: 'world/all_reduce#7/rs1',
    dtype: 'f32[4,2]',
    byteLength: 32,
    offset: 0,
    data: new Uint8Array(32).map((_, i) => i),
  },
  {
    src: 200,
    key: 'k'.repeat(300),
    dtype: 'f64',
    byteLength: 2 ** 40,
    offset: 2 ** 33 + 5,
    data: new Uint8Array(1000).fill(7),
  },
];

describe('Frame codec', () => {
  it.each(cases.map((c, i) => [i, c] as const))('case %i: protobufjs reads what we write', (_, frame) => {
    const ours = encodeFrame(frame);
    const theirs = method.requestDeserialize(ours);
    expect(theirs.src).toBe(frame.src);
    expect(theirs.key).toBe(frame.key);
    expect(theirs.dtype).toBe(frame.dtype);
    expect(Number(theirs.byteLength)).toBe(frame.byteLength);
    expect(Number(theirs.offset)).toBe(frame.offset);
    expect(Buffer.from(theirs.data as Buffer).equals(Buffer.from(frame.data))).toBe(true);
  });

  it.each(cases.map((c, i) => [i, c] as const))('case %i: we read what protobufjs writes', (_, frame) => {
    const decoded = decodeFrame(method.requestSerialize({ ...frame, data: Buffer.from(frame.data) }));
    expect({ ...decoded, data: [...decoded.data] }).toEqual({ ...frame, data: [...frame.data] });
  });

  it('places the data at an 8-byte boundary of the message', () => {
    for (const frame of cases) {
      const encoded = encodeFrame(frame);
      const decoded = decodeFrame(encoded);
      expect((decoded.data.byteOffset - encoded.byteOffset) % 8).toBe(0);
    }
  });
});
