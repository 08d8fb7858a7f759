// Hand-written codec for proto/collective.proto's Frame and Ack, byte-compatible with protobuf:
// encoding copies the chunk once, decoding returns a view (no copy). A padding field (7) puts the
// data at an 8-byte boundary of the message, so the receiver reduces straight from it. The grpc
// group no longer sends Frames (socket-transport.ts); the codec stays exported.
// Test: cd packages/parallel && npx vitest run src/frame.test.ts (checked against proto-loader's codec)

export interface Frame {
  src: number;
  key: string;
  dtype: string;
  byteLength: number;
  offset: number;
  data: Uint8Array;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 128) {
    out[at++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

export function encodeFrame(frame: Frame): Buffer {
  const key = Buffer.from(frame.key);
  const dtype = Buffer.from(frame.dtype);
  let head =
    1 +
    varintSize(frame.src) +
    1 +
    varintSize(key.length) +
    key.length +
    1 +
    varintSize(dtype.length) +
    dtype.length +
    1 +
    varintSize(frame.byteLength) +
    1 +
    varintSize(frame.offset);
  const dataHead = 1 + varintSize(frame.data.byteLength);
  // Field 7 (2 bytes minimum: tag and a one-byte length) pads the data start to 8 bytes.
  const pad = (8 - ((head + 2 + dataHead) % 8)) % 8;
  head += 2 + pad;
  const out = Buffer.allocUnsafe(head + dataHead + frame.data.byteLength);
  let at = 0;
  out[at++] = 0x08;
  at = writeVarint(out, at, frame.src);
  out[at++] = 0x12;
  at = writeVarint(out, at, key.length);
  at += key.copy(out, at);
  out[at++] = 0x1a;
  at = writeVarint(out, at, dtype.length);
  at += dtype.copy(out, at);
  out[at++] = 0x20;
  at = writeVarint(out, at, frame.byteLength);
  out[at++] = 0x28;
  at = writeVarint(out, at, frame.offset);
  out[at++] = 0x3a;
  out[at++] = pad;
  out.fill(0, at, at + pad);
  at += pad;
  out[at++] = 0x32;
  at = writeVarint(out, at, frame.data.byteLength);
  out.set(frame.data, at);
  return out;
}

function readVarint(buf: Buffer, state: { at: number }): number {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (state.at >= buf.length) throw new Error('Frame: truncated varint');
    const byte = buf[state.at++]!;
    value += (byte & 127) * scale;
    if (byte < 128) return value;
    scale *= 128;
  }
}

export function decodeFrame(buf: Buffer): Frame {
  const frame: Frame = { src: 0, key: '', dtype: '', byteLength: 0, offset: 0, data: new Uint8Array(0) };
  const state = { at: 0 };
  while (state.at < buf.length) {
    const tag = readVarint(buf, state);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === 0) {
      const v = readVarint(buf, state);
      if (field === 1) frame.src = v;
      else if (field === 4) frame.byteLength = v;
      else if (field === 5) frame.offset = v;
    } else if (wire === 2) {
      const length = readVarint(buf, state);
      const view = buf.subarray(state.at, state.at + length);
      if (view.length !== length) throw new Error(`Frame: field ${field} truncated`);
      state.at += length;
      if (field === 2) frame.key = view.toString();
      else if (field === 3) frame.dtype = view.toString();
      else if (field === 6) frame.data = view;
    } else {
      throw new Error(`Frame: unexpected wire type ${wire} for field ${field}`);
    }
  }
  return frame;
}

export function encodeAck(ack: { error: string }): Buffer {
  const text = Buffer.from(ack.error);
  if (text.length === 0) return Buffer.alloc(0);
  const out = Buffer.allocUnsafe(1 + varintSize(text.length) + text.length);
  out[0] = 0x0a;
  const at = writeVarint(out, 1, text.length);
  text.copy(out, at);
  return out;
}

export function decodeAck(buf: Buffer): { error: string } {
  if (buf.length === 0) return { error: '' };
  const state = { at: 1 };
  const length = readVarint(buf, state);
  return { error: buf.subarray(state.at, state.at + length).toString() };
}
