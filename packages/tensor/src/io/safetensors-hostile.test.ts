// Hostile safetensors inputs that used to escape without a file name: a header nested deeply
// enough to overflow JSON.stringify in the error message, and a directory where a file should be.
// Both must be a SafetensorsError naming the path. Run: cd packages/tensor && npx vitest run src/io
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSafetensors } from './safetensors.js';
import { SafetensorsError } from './safetensors-format.js';
import { loadTensors } from './tensors.js';

const root = mkdtempSync(join(tmpdir(), 'grin-st-hostile-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function withHeader(name: string, header: string): string {
  const bytes = Buffer.from(header);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.length));
  const path = join(root, name);
  writeFileSync(path, Buffer.concat([length, bytes]));
  return path;
}

describe('hostile safetensors files are named', () => {
  it.each([
    [
      'a deeply nested entry',
      `{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
      /header entry is a value nested too deeply/,
    ],
    [
      'a deeply nested shape',
      `{"a":{"dtype":"F32","shape":${'['.repeat(200_000)}${']'.repeat(200_000)},"data_offsets":[0,0]}}`,
      /has shape a value nested too deeply/,
    ],
    ['a long entry', `{"a":"${'x'.repeat(5000)}"}`, /header entry is "x{196}\.\.\.; expected an object/],
  ])('%s', (label, header, message) => {
    const path = withHeader(`${label.replace(/ /g, '-')}.safetensors`, header);
    let caught: unknown;
    try {
      loadTensors(path);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SafetensorsError);
    expect((caught as Error).message.startsWith(`${path}: `)).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });

  it('a directory in place of model.safetensors', () => {
    const model = join(root, 'model-dir');
    const path = join(model, 'model.safetensors');
    mkdirSync(path, { recursive: true });
    expect(() => loadTensors(model)).toThrow(
      new SafetensorsError(path, undefined, 'is not a regular file (a directory?)'),
    );
    expect(() => openSafetensors(path)).toThrow(`${path}: is not a regular file`);
  });
});
