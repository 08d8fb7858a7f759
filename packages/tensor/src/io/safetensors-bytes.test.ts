// The in-memory reader against the file reader on one file holding every dtype (F32, F64, F16,
// BF16, I64, I32, I16, I8, U16, U8, BOOL), at an unaligned byte offset inside a larger buffer;
// and the same refusals, naming the source, for a truncated file, an overrunning header and
// overlapping tensors. Run: cd packages/tensor && npx vitest run src/io/safetensors-bytes
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSafetensors } from './safetensors.js';
import { parseSafetensorsBytes } from './safetensors-bytes.js';
import { writeSafetensors } from './safetensors-write.js';

const file = join(mkdtempSync(join(tmpdir(), 'grin-st-bytes-')), 'all.safetensors');
writeSafetensors(
  file,
  {
    f32: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1.5, -2, 3e-3, 7) },
    f64: { dtype: 'F64', shape: [3], data: Float64Array.of(Math.PI, -1e300, 0) },
    f16: { dtype: 'F16', shape: [2], data: Float32Array.of(0.5, -65504) },
    bf16: { dtype: 'BF16', shape: [2], data: Float32Array.of(1, -3.140625) },
    i64: { dtype: 'I64', shape: [2], data: Int32Array.of(-5, 2 ** 31 - 1) },
    i32: { dtype: 'I32', shape: [1], data: Int32Array.of(-7) },
    i16: { dtype: 'I16', shape: [1], data: Int16Array.of(-300) },
    i8: { dtype: 'I8', shape: [1], data: Int8Array.of(-8) },
    u16: { dtype: 'U16', shape: [1], data: Uint16Array.of(65535) },
    u8: { dtype: 'U8', shape: [3], data: Uint8Array.of(0, 1, 255) },
    bool: { dtype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) },
  },
  { format: 'pt' },
);
const bytes = new Uint8Array(readFileSync(file));
/** The file at byte offset 3 of a larger buffer: no view may assume alignment. */
const unaligned = () => {
  const buffer = new Uint8Array(bytes.length + 5);
  buffer.set(bytes, 3);
  return buffer.subarray(3, 3 + bytes.length);
};

describe('parseSafetensorsBytes', () => {
  it('reads every dtype as the file reader does, from an unaligned view', () => {
    const { metadata, tensors } = parseSafetensorsBytes(unaligned(), 'all.safetensors');
    const reference = openSafetensors(file);
    expect(metadata).toEqual(reference.metadata);
    expect([...tensors.keys()].sort()).toEqual(reference.names().sort());
    for (const name of reference.names()) {
      const ours = tensors.get(name)!;
      expect(ours.dtype, name).toBe(reference.info(name).dtype);
      expect(ours.shape, name).toEqual(reference.info(name).shape);
      expect(ours.data, name).toEqual(reference.read(name));
    }
    reference.close();
    expect(Array.from(tensors.get('bf16')!.data)).toEqual([1, -3.140625]);
    expect(Array.from(tensors.get('i64')!.data)).toEqual([-5, 2 ** 31 - 1]);
  });

  it('refuses what the file reader refuses, naming the source', () => {
    expect(() => parseSafetensorsBytes(bytes.subarray(0, 4), 'a.st')).toThrow(
      'a.st: is 4 bytes; expected at least the 8-byte header length',
    );
    expect(() => parseSafetensorsBytes(bytes.subarray(0, 40), 'a.st')).toThrow(
      /^a\.st: header length \d+ runs past the end of the 40-byte file \(expected <= 32\)$/,
    );
    const header = new TextEncoder().encode(
      JSON.stringify({
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      }),
    );
    const overlapping = new Uint8Array(8 + header.length + 12);
    new DataView(overlapping.buffer).setBigUint64(0, BigInt(header.length), true);
    overlapping.set(header, 8);
    expect(() => parseSafetensorsBytes(overlapping, 'b.st')).toThrow(
      /^b\.st: tensor 'b'.*overlapping tensor 'a'/,
    );
  });
});
