// A safetensors file shorter than its header says is refused with its name; a whole one passes.
// Run: cd packages/hub && npx vitest run src/safetensors-check
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { safetensorsBytes } from './fake-hub.js';
import { checkSafetensorsComplete } from './safetensors-check.js';

const dir = mkdtempSync(join(tmpdir(), 'grin-st-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checkSafetensorsComplete', () => {
  const whole = safetensorsBytes('w', 100);
  it.each([
    [whole.length, null],
    [
      whole.length - 1,
      /shard\.safetensors: truncated safetensors file: its tensors need \d+ bytes but the file has \d+/,
    ],
    [20, /the header alone needs \d+ bytes but the file has 20/],
    [5, /shorter than its 8-byte header length/],
  ])('a file cut to %d bytes', (length, error) => {
    const path = join(dir, `cut-${length}.safetensors`);
    writeFileSync(path, whole.subarray(0, length));
    const check = () => checkSafetensorsComplete(path, 'shard.safetensors');
    if (error) expect(check).toThrow(error);
    else expect(check).not.toThrow();
  });
});
