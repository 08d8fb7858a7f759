// `grin logits` end to end on a PyTorch fixture: writes logits, loss and every gradient to a temp
// file, which must match the fixture's reference.safetensors (f32: 1e-4 of each tensor's max), and
// names bad token-id files precisely. Run: cd apps/trainer && npx vitest run src/commands/logits
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTensors } from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { logitsCommand } from './logits.js';

const fixture = join(import.meta.dirname, '../../../../packages/model-grin/fixtures/gqa2-window5');
const work = mkdtempSync(join(tmpdir(), 'grin-logits-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function run(argv: string[]): Promise<number> {
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return await logitsCommand.run(argv);
  } finally {
    spy.mockRestore();
  }
}

const maxAbs = (data: ArrayLike<number>) => Array.from(data).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('grin logits', () => {
  it('writes logits, loss and every gradient matching the PyTorch reference', async () => {
    const out = join(work, 'ours.safetensors');
    expect(await run(['--model', fixture, '--ids', join(fixture, 'ids.json'), '--grad', '--out', out])).toBe(
      0,
    );
    const ours = loadTensors(out, { floatDType: 'f64' });
    const reference = loadTensors(join(fixture, 'reference.safetensors'), { floatDType: 'f64' });
    const expected = Object.keys(reference)
      .filter((n) => !n.startsWith('rope.'))
      .sort();
    expect(Object.keys(ours).sort()).toEqual(expected);
    for (const name of expected) {
      const ref = reference[name]!;
      expect(ours[name]!.shape, name).toEqual(ref.shape);
      expectAllClose(
        ours[name]!,
        ref,
        { rtol: 1e-4, atol: 1e-4 * maxAbs(ref.toArray() as ArrayLike<number>) },
        name,
      );
    }
  });

  it('without --grad writes logits and loss only', async () => {
    const out = join(work, 'plain.safetensors');
    expect(
      await run(['--model', fixture, '--ids', join(fixture, 'ids.json'), '--out', out, '--dtype', 'f64']),
    ).toBe(0);
    expect(Object.keys(loadTensors(out)).sort()).toEqual(['logits', 'loss']);
  });

  it.each([
    ['{"a": 1}', /expected a non-empty JSON array of rows of token ids/],
    ['[1, 2]', /row 0 is 1; expected an array of token ids/],
    ['[[1, 2, 3], [4, 5]]', /rows have different lengths \(row 0 has 3, row 1 has 2\)/],
    ['[[1, 2], [3, 96]]', /row 1, column 1 is 96; token ids must be integers in \[0, 96\)/],
    ['[[1, -1]]', /row 0, column 1 is -1/],
    ['[[1.5, 2]]', /row 0, column 0 is 1\.5/],
    ['[[1]]', /at least 2 ids/],
    ['[[1, 2', /cannot read token ids/],
  ])('rejects ids %s', async (text, message) => {
    const file = join(work, 'bad.json');
    writeFileSync(file, text);
    await expect(
      run(['--model', fixture, '--ids', file, '--out', join(work, 'x.safetensors')]),
    ).rejects.toThrow(message);
  });

  it('requires its flags', async () => {
    await expect(run(['--model', fixture])).rejects.toThrow(/--ids is required/);
    await expect(run(['--model', fixture, '--ids', 'x', '--out', 'y', '--dtype', 'bf16'])).rejects.toThrow(
      /--dtype must be f32 or f64/,
    );
    expect(readFileSync(join(fixture, 'ids.json'), 'utf8')).toMatch(/^\[\[/);
  });
});
