// safetensors read/write: exact round trips of every dtype, byte-for-byte agreement with the reference
// implementation's own test vectors (huggingface/safetensors, safetensors/src/tensor.rs tests), and one
// test per malformed input, each checking the error names the file and the tensor.
// Run: cd packages/tensor && npx vitest run src/io/safetensors.test.ts
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSafetensors } from './safetensors.js';
import { SafetensorsError } from './safetensors-format.js';
import { type TensorEntries, writeFileAtomic, writeSafetensors } from './safetensors-write.js';

const root = mkdtempSync(join(tmpdir(), 'grin-safetensors-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let fileCounter = 0;
const tempPath = (name = 'model') => join(root, `${name}-${fileCounter++}.safetensors`);

const bytesOf = (array: ArrayBufferView) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

/** A file exactly as given: 8-byte LE header length, header text, data bytes. */
function handBuilt(
  header: string | object,
  data: Uint8Array | number[] = [],
  declaredLength?: number | bigint,
): string {
  const path = tempPath('hand');
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(declaredLength ?? text.length));
  writeFileSync(path, Buffer.concat([length, text, Buffer.from(data)]));
  return path;
}

function expectError(
  run: () => unknown,
  path: string,
  tensor: string | undefined,
  fragment: RegExp | string,
) {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SafetensorsError);
  const { message } = caught as SafetensorsError;
  expect(message.startsWith(`${path}: `)).toBe(true);
  if (tensor !== undefined) expect(message).toContain(`tensor '${tensor}'`);
  if (typeof fragment === 'string') expect(message).toContain(fragment);
  else expect(message).toMatch(fragment);
}

describe('round trip', () => {
  it('keeps every dtype exactly', () => {
    const path = tempPath();
    const f32 = new Float32Array([0, -0, 1.5, -3.25e-38, Number.POSITIVE_INFINITY, Number.NaN]);
    const f64 = new Float64Array([Math.PI, -0, 1e300, Number.MIN_VALUE]);
    const i64 = new BigInt64Array([0n, -1n, 2n ** 62n, -(2n ** 63n)]);
    const entries: TensorEntries = {
      f32: { dtype: 'F32', shape: [2, 3], data: f32 },
      f64: { dtype: 'F64', shape: [4], data: f64 },
      i32: { dtype: 'I32', shape: [3], data: new Int32Array([-(2 ** 31), 0, 2 ** 31 - 1]) },
      i64: { dtype: 'I64', shape: [2, 2], data: i64 },
      i64small: { dtype: 'I64', shape: [3], data: new Int32Array([-5, 0, 2 ** 31 - 1]) },
      bool: { dtype: 'BOOL', shape: [4], data: new Uint8Array([1, 0, 0, 1]) },
      u8: { dtype: 'U8', shape: [2], data: new Uint8Array([0, 255]) },
      i8: { dtype: 'I8', shape: [2], data: new Int8Array([-128, 127]) },
      i16: { dtype: 'I16', shape: [2], data: new Int16Array([-32768, 32767]) },
      u16: { dtype: 'U16', shape: [2], data: new Uint16Array([0, 65535]) },
      bf16: { dtype: 'BF16', shape: [4], data: new Float32Array([1, -2, 0.5, Number.NaN]) },
      bf16raw: { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0x7f80]) },
      f16: {
        dtype: 'F16',
        shape: [4],
        data: new Float32Array([1, 65504, 2 ** -24, Number.NEGATIVE_INFINITY]),
      },
      scalar: { dtype: 'F32', shape: [], data: new Float32Array([7]) },
      empty: { dtype: 'F32', shape: [0, 5], data: new Float32Array(0) },
    };
    writeSafetensors(path, entries);
    const file = openSafetensors(path);
    expect(file.names()).toEqual(Object.keys(entries));
    expect(file.info('f32')).toEqual({ dtype: 'F32', shape: [2, 3], byteLength: 24 });
    expect(bytesOf(file.read('f32'))).toEqual(bytesOf(f32));
    expect(file.read('f32')).toBeInstanceOf(Float32Array);
    expect(bytesOf(file.read('f64'))).toEqual(bytesOf(f64));
    expect(file.read('i32')).toEqual(new Int32Array([-(2 ** 31), 0, 2 ** 31 - 1]));
    expect(file.read('i64', 'bigint')).toEqual(i64);
    expect(file.read('i64small')).toEqual(new Int32Array([-5, 0, 2 ** 31 - 1]));
    expect(file.read('i64small', 'raw')).toEqual(new BigInt64Array([-5n, 0n, 2n ** 31n - 1n]));
    expect(file.read('bool')).toEqual(new Uint8Array([1, 0, 0, 1]));
    expect(file.read('u8')).toEqual(new Uint8Array([0, 255]));
    expect(file.read('i8')).toEqual(new Int8Array([-128, 127]));
    expect(file.read('i16')).toEqual(new Int16Array([-32768, 32767]));
    expect(file.read('u16')).toEqual(new Uint16Array([0, 65535]));
    expect(file.read('bf16', 'raw')).toEqual(new Uint16Array([0x3f80, 0xc000, 0x3f00, 0x7fc0]));
    expect(file.read('bf16')).toEqual(new Float32Array([1, -2, 0.5, Number.NaN]));
    expect(file.read('bf16raw')).toEqual(new Float32Array([1, Number.POSITIVE_INFINITY]));
    expect(file.read('f16', 'raw')).toEqual(new Uint16Array([0x3c00, 0x7bff, 0x0001, 0xfc00]));
    expect(file.read('f16')).toEqual(new Float32Array([1, 65504, 2 ** -24, Number.NEGATIVE_INFINITY]));
    expect(file.read('scalar')).toEqual(new Float32Array([7]));
    expect(file.info('empty').byteLength).toBe(0);
    expect(file.read('empty')).toEqual(new Float32Array(0));
    file.close();
  });

  it('reads each tensor into its own exactly sized, aligned buffer', () => {
    const path = tempPath();
    // An odd-sized tensor first, so the second one starts unaligned within the data section.
    writeSafetensors(path, [
      ['odd', { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) }],
      ['wide', { dtype: 'F64', shape: [2], data: new Float64Array([1, 2]) }],
    ]);
    const file = openSafetensors(path);
    const bytes = file.readBytes('wide');
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(16);
    expect(file.read('wide')).toEqual(new Float64Array([1, 2]));
    file.close();
    expectError(() => file.read('wide'), path, 'wide', 'closed');
  });

  it('round trips metadata, and accepts a Map of entries', () => {
    const path = tempPath();
    const metadata = { format: 'pt', note: 'ünïcode ✓', empty: '' };
    writeSafetensors(
      path,
      new Map([['w', { dtype: 'F32', shape: [1], data: new Float32Array([1]) }]]),
      metadata,
    );
    const file = openSafetensors(path);
    expect(file.metadata).toEqual(metadata);
    file.close();
    const bare = tempPath();
    writeSafetensors(bare, {});
    expect(openSafetensors(bare).metadata).toEqual({});
  });

  it('keeps the given order even for integer-like names', () => {
    const path = tempPath();
    const entry = (value: number) => ({ dtype: 'F32' as const, shape: [1], data: new Float32Array([value]) });
    writeSafetensors(path, [
      ['b', entry(1)],
      ['10', entry(2)],
      ['a', entry(3)],
    ]);
    const header = readFileSync(path).subarray(8).toString();
    expect(header.indexOf('"b"')).toBeLessThan(header.indexOf('"10"'));
    expect(openSafetensors(path).read('10')).toEqual(new Float32Array([2]));
  });
});

describe('format compatibility with the reference implementation', () => {
  // Byte vectors copied from huggingface/safetensors safetensors/src/tensor.rs (test_serialization,
  // test_serialization_forced_alignement, test_empty): what Python's save_file writes for these inputs.
  const attn = new Float32Array([0, 1, 2, 3, 4, 5]);
  const json = (text: string) => [...Buffer.from(text)];
  const floats = [0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64];

  it('writes test_serialization byte for byte', () => {
    const path = tempPath();
    writeSafetensors(path, { 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: attn } });
    const expected = [
      ...[64, 0, 0, 0, 0, 0, 0, 0],
      ...json('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}'),
      ...floats,
    ];
    expect([...readFileSync(path)]).toEqual(expected);
  });

  it('pads the header with spaces to 8 bytes (test_serialization_forced_alignement)', () => {
    const path = tempPath();
    writeSafetensors(path, { attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: attn } });
    const expected = [
      ...[72, 0, 0, 0, 0, 0, 0, 0],
      ...json('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       '),
      ...floats,
    ];
    expect([...readFileSync(path)]).toEqual(expected);
  });

  it('writes empty files with and without metadata (test_empty)', () => {
    const bare = tempPath();
    writeSafetensors(bare, {});
    expect([...readFileSync(bare)]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const withMetadata = tempPath();
    writeSafetensors(withMetadata, {}, { framework: 'pt' });
    expect([...readFileSync(withMetadata)]).toEqual([
      ...[40, 0, 0, 0, 0, 0, 0, 0],
      ...json('{"__metadata__":{"framework":"pt"}}     '),
    ]);
  });

  it('reads the reference test_deserialization file and unpadded, whitespace-padded headers', () => {
    const path = handBuilt(
      '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}',
      new Array(16).fill(0),
    );
    expect(readFileSync(path).readBigUInt64LE(0)).toBe(60n);
    const file = openSafetensors(path);
    expect(file.names()).toEqual(['test']);
    expect(file.info('test')).toEqual({ dtype: 'I32', shape: [2, 2], byteLength: 16 });
    expect(file.read('test')).toEqual(new Int32Array(4));
    const padded = handBuilt('{"s":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}\r \t\n', [1, 0, 0, 0]);
    expect(openSafetensors(padded).read('s')).toEqual(new Int32Array([1]));
  });
});

describe('malformed files', () => {
  const entry = (dtype: string, shape: unknown, offsets: unknown) => ({
    dtype,
    shape,
    data_offsets: offsets,
  });

  it('rejects a file shorter than 8 bytes', () => {
    const path = tempPath('short');
    writeFileSync(path, Buffer.from([1, 2, 3]));
    expectError(
      () => openSafetensors(path),
      path,
      undefined,
      'is 3 bytes; expected at least the 8-byte header length',
    );
  });

  it('rejects a header length past the end of the file', () => {
    const path = handBuilt('{}', [], 60);
    expectError(
      () => openSafetensors(path),
      path,
      undefined,
      'header length 60 runs past the end of the 10-byte file',
    );
  });

  it('rejects an absurd header length', () => {
    const path = handBuilt('{}', [], 0xffffff0000000000n);
    expectError(() => openSafetensors(path), path, undefined, 'exceeds the 100000000 byte limit');
  });

  it('rejects a header that is not JSON, not UTF-8, or not an object', () => {
    const notJson = handBuilt('{');
    expectError(() => openSafetensors(notJson), notJson, undefined, 'header is not valid JSON');
    const notUtf8 = tempPath('utf8');
    writeFileSync(notUtf8, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0xff]));
    expectError(() => openSafetensors(notUtf8), notUtf8, undefined, 'not valid UTF-8');
    const array = handBuilt('[1,2]');
    expectError(() => openSafetensors(array), array, undefined, 'header is [1,2]; expected a JSON object');
  });

  it('rejects __metadata__ that is not a string-to-string map', () => {
    const path = handBuilt({ __metadata__: { step: 5 } });
    expectError(
      () => openSafetensors(path),
      path,
      undefined,
      '__metadata__ is {"step":5}; expected an object of string to string',
    );
  });

  it.each(['dtype', 'shape', 'data_offsets'])('rejects an entry missing %s', (key) => {
    const full: Record<string, unknown> = entry('F32', [1], [0, 4]);
    delete full[key];
    const path = handBuilt({ 'layer.weight': full }, [0, 0, 0, 0]);
    expectError(() => openSafetensors(path), path, 'layer.weight', `lacks '${key}'`);
  });

  it('rejects an entry that is not an object', () => {
    const path = handBuilt({ w: 5 });
    expectError(() => openSafetensors(path), path, 'w', 'header entry is 5; expected an object');
  });

  it('rejects an unknown dtype', () => {
    const path = handBuilt({ 'q.weight': entry('Q4_K', [1], [0, 1]) }, [0]);
    expectError(
      () => openSafetensors(path),
      path,
      'q.weight',
      /unknown dtype "Q4_K"; expected one of .*BF16/,
    );
  });

  it.each([
    ['negative', [2, -1]],
    ['fractional', [1.5]],
    ['non-numeric', ['4']],
    ['non-array', 4],
  ])('rejects a %s shape', (_, shape) => {
    const path = handBuilt({ w: entry('F32', shape, [0, 4]) }, [0, 0, 0, 0]);
    expectError(
      () => openSafetensors(path),
      path,
      'w',
      /has shape .*; expected an array of dims|non-negative integer/,
    );
  });

  it.each([
    ['begin > end', [8, 4]],
    ['one number', [4]],
    ['negative', [-4, 0]],
    ['fractional', [0, 3.5]],
    ['not an array', '0,4'],
  ])('rejects data_offsets that are %s', (_, offsets) => {
    const path = handBuilt({ w: entry('F32', [1], offsets) }, new Array(8).fill(0));
    expectError(
      () => openSafetensors(path),
      path,
      'w',
      'expected [begin, end], integers with 0 <= begin <= end',
    );
  });

  it('rejects offsets past the data section (truncated file)', () => {
    const path = handBuilt({ 'embed.weight': entry('F32', [4], [0, 16]) }, new Array(10).fill(0));
    expectError(
      () => openSafetensors(path),
      path,
      'embed.weight',
      'data section holds only 10 bytes (truncated file?)',
    );
  });

  it('rejects a byte count that does not match shape and dtype', () => {
    const path = handBuilt(
      { 'lm_head.weight': entry('F32', [32064, 4096], [0, 1000]) },
      new Array(1000).fill(0),
    );
    expectError(
      () => openSafetensors(path),
      path,
      'lm_head.weight',
      'has shape [32064,4096] (F32: 525336576 bytes) but data_offsets span 1000 bytes',
    );
  });

  it('rejects overlapping tensors', () => {
    const path = handBuilt(
      { a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [4, 12]) },
      new Array(12).fill(0),
    );
    expectError(() => openSafetensors(path), path, 'b', "overlapping tensor 'a' at [0,8]");
  });

  it('names a few tensors when asked for a missing one', () => {
    const path = tempPath();
    const one = { dtype: 'F32' as const, shape: [1], data: new Float32Array(1) };
    writeSafetensors(path, { 'model.norm.weight': one, 'lm_head.weight': one, 'model.embed.weight': one });
    const file = openSafetensors(path);
    expectError(
      () => file.read('model.norm.wieght'),
      path,
      'model.norm.wieght',
      /has 3 tensors, e\.g\. 'model\.norm\.weight'/,
    );
    file.close();
  });

  it('refuses to narrow an I64 that does not fit in int32, and bigint reads of other dtypes', () => {
    const path = tempPath();
    writeSafetensors(path, {
      ids: { dtype: 'I64', shape: [2], data: new BigInt64Array([1n, 2n ** 40n]) },
      w: { dtype: 'F32', shape: [1], data: new Float32Array(1) },
    });
    const file = openSafetensors(path);
    expectError(
      () => file.read('ids'),
      path,
      'ids',
      "element 1 is 1099511627776, outside the int32 range; read it with as: 'bigint'",
    );
    expectError(() => file.read('w', 'bigint'), path, 'w', "is F32; as: 'bigint' applies only to I64");
    file.close();
  });
});

describe('bad writes', () => {
  const cases: [string, TensorEntries, string, string][] = [
    [
      'wrong array type',
      { w: { dtype: 'F32', shape: [2], data: new Float64Array(2) } },
      'w',
      'is F32 but its data is Float64Array; expected Float32Array',
    ],
    [
      'wrong length',
      { w: { dtype: 'BF16', shape: [2, 3], data: new Float32Array(5) } },
      'w',
      'has shape [2,3] (6 elements) but its data has 5',
    ],
    [
      'unknown dtype',
      { w: { dtype: 'F8' as 'F32', shape: [1], data: new Float32Array(1) } },
      'w',
      'has dtype "F8"',
    ],
    [
      'bad dim',
      { w: { dtype: 'F32', shape: [-1], data: new Float32Array(1) } },
      'w',
      'every dim must be a non-negative integer',
    ],
    [
      'BOOL value 2',
      { mask: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 2]) } },
      'mask',
      'element 1 is 2; expected 0 or 1',
    ],
    [
      'reserved name',
      { __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } },
      '__metadata__',
      'is not a valid name',
    ],
    [
      'I64 from floats',
      { ids: { dtype: 'I64', shape: [1], data: new Float32Array(1) } },
      'ids',
      'expected BigInt64Array or Int32Array',
    ],
  ];

  it.each(cases)('rejects %s before creating any file', (_, entries, tensor, fragment) => {
    const path = tempPath('bad');
    expectError(() => writeSafetensors(path, entries), path, tensor, fragment);
    expect(readdirSync(root).filter((name) => name.startsWith(path.split('/').pop()!))).toEqual([]);
  });

  it('rejects duplicate names and non-string metadata', () => {
    const path = tempPath('bad');
    const one = { dtype: 'F32' as const, shape: [1], data: new Float32Array(1) };
    expectError(
      () =>
        writeSafetensors(path, [
          ['w', one],
          ['w', one],
        ]),
      path,
      'w',
      'appears twice',
    );
    expectError(
      () => writeSafetensors(path, {}, { step: 5 as unknown as string }),
      path,
      undefined,
      "metadata 'step' is number",
    );
  });
});

describe('atomic writes', () => {
  it('replaces an existing file and leaves no temp files behind', () => {
    const dir = mkdtempSync(join(root, 'atomic-'));
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, { w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
    writeSafetensors(path, { w: { dtype: 'F32', shape: [1], data: new Float32Array([2]) } });
    expect(openSafetensors(path).read('w')).toEqual(new Float32Array([2]));
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
  });

  it('keeps the old file intact when writing fails midway', () => {
    const dir = mkdtempSync(join(root, 'atomic-'));
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, { w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
    const before = readFileSync(path);
    expect(() =>
      writeFileAtomic(path, (fd) => {
        writeFileSync(fd, 'partial');
        throw new Error('disk full');
      }),
    ).toThrow('disk full');
    expect(readFileSync(path)).toEqual(before);
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
  });
});
