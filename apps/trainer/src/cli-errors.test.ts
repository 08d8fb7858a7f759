// Hostile input through the real CLI (runCli, in-process): each case must end with one or two
// lines naming what and where, exit 2 for usage mistakes and 1 for runtime errors, no stack trace
// (unless GRIN_DEBUG=1), and within a second where the issue asked for it (unusable --out).
// Run: cd apps/trainer && npx vitest run src/cli-errors.test.ts
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTensors, writeSafetensors } from '@grin-moe/tensor';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runCli } from './run-cli.js';
import { writeTinyCorpus } from './train/fixtures.js';

const fixture = join(import.meta.dirname, '../../../packages/model-grin/fixtures/mqa-e6');
const root = mkdtempSync(join(tmpdir(), 'grin-cli-errors-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const data = writeTinyCorpus(root);
const ids = join(root, 'ids.json');
writeFileSync(ids, '[[1, 2, 3, 4]]');

/** A copy of the fixture model whose `name` holds a NaN. */
function poisoned(name: string): string {
  const dir = join(root, 'nan-model');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(fixture, 'config.json'), join(dir, 'config.json'));
  const tensors = loadTensors(join(fixture, 'model.safetensors'));
  const entries = Object.entries(tensors).map(([key, t]) => {
    const values = Float32Array.from(t.toArray() as ArrayLike<number>);
    if (key === name) values[0] = Number.NaN;
    return [key, { dtype: 'F32' as const, shape: [...t.shape], data: values }] as const;
  });
  writeSafetensors(join(dir, 'model.safetensors'), entries, { format: 'pt' });
  return dir;
}
const nanModel = poisoned('model.layers.1.self_attn.k_proj.weight');

const dirWeights = join(root, 'dir-weights');
mkdirSync(join(dirWeights, 'model.safetensors'), { recursive: true });
copyFileSync(join(fixture, 'config.json'), join(dirWeights, 'config.json'));

const deep = join(root, 'deep');
mkdirSync(deep);
copyFileSync(join(fixture, 'config.json'), join(deep, 'config.json'));
{
  const header = Buffer.from(`{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(join(deep, 'model.safetensors'), Buffer.concat([length, header]));
}

const binary = join(root, 'weights.bin');
writeFileSync(binary, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3, 0xff, 0xfe]));
const latin1 = join(root, 'latin1.txt');
writeFileSync(latin1, Buffer.from('caf\xe9 au lait\n\nsecond document\n', 'latin1'));
const runsFile = join(root, 'runs.txt');
writeFileSync(runsFile, 'not a directory');

async function cli(argv: string[], env: Record<string, string> = {}) {
  let text = '';
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const quiet = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const started = Date.now();
  try {
    const code = await runCli(argv, { write: (chunk: string) => (text += chunk) });
    return { code, text, ms: Date.now() - started };
  } finally {
    quiet.mockRestore();
    process.env = saved;
  }
}

const train = ['train', '--data', data, '--max-steps', '2'];

describe('every error is a line or two, with the right exit code and no stack', () => {
  it.each([
    // [label, argv, exit code, message]
    [
      '--out under /proc',
      [...train, '--out', '/proc/grin-runs'],
      2,
      /train --out \/proc\/grin-runs: cannot create \/proc\/grin-runs \(ENOENT\)/,
    ],
    ['--out is a file', [...train, '--out', runsFile], 2, /runs\.txt is a file, not a directory/],
    [
      'a run name with a separator',
      [...train, '--out', root, '--name', '../escape'],
      2,
      /run\.name "\.\.\/escape" must be one directory name/,
    ],
    [
      'binary training data',
      ['train', '--data', binary, '--out', root, '--name', 'bin'],
      1,
      /weights\.bin: looks like a binary file \(a NUL byte at offset 4\)/,
    ],
    [
      'non-UTF-8 training data',
      ['train', '--data', latin1, '--out', root, '--name', 'latin'],
      1,
      /latin1\.txt:1: not valid UTF-8/,
    ],
    [
      '--init-from a missing directory',
      [...train, '--out', root, '--name', 'init', '--init-from', join(root, 'missing-model')],
      1,
      /missing-model: no such directory; data\.initFrom \(--init-from\) must be a GRIN/,
    ],
    [
      'words after --prompt',
      ['generate', '--model', fixture, '--prompt', 'the', 'jury', 'said'],
      2,
      /generate: unexpected words 'jury' 'said'; quote a prompt/,
    ],
    [
      'a flag where a value belongs',
      ['generate', '--model', fixture, '--prompt', '--max-new-tokens', '5'],
      2,
      /--prompt needs a value, but the next word is the flag --max-new-tokens/,
    ],
    [
      'a prompt past max_position_embeddings',
      [
        'generate',
        '--model',
        fixture,
        '--prompt-ids',
        Array.from({ length: 70 }, (_, i) => i % 50).join(','),
      ],
      2,
      /the prompt is 70 tokens, longer than the model's max_position_embeddings \(64/,
    ],
    [
      'generate with a NaN weight',
      ['generate', '--model', nanModel, '--prompt-ids', '1,2,3'],
      1,
      /nan-model\/model\.safetensors: tensor 'model\.layers\.1\.self_attn\.k_proj\.weight' is not finite: value NaN at flat index 0/,
    ],
    [
      'logits with a NaN weight',
      ['logits', '--model', nanModel, '--ids', ids, '--out', join(root, 'l.safetensors')],
      1,
      /tensor 'model\.layers\.1\.self_attn\.k_proj\.weight' is not finite/,
    ],
    [
      'logits --out under /proc',
      ['logits', '--model', fixture, '--ids', ids, '--out', '/proc/grin/l.safetensors'],
      2,
      /logits --out \/proc\/grin\/l\.safetensors: cannot create \/proc\/grin/,
    ],
    [
      'weights that are a directory',
      ['generate', '--model', dirWeights, '--prompt-ids', '1'],
      1,
      /dir-weights\/model\.safetensors: is not a regular file/,
    ],
    [
      'a deeply nested safetensors header',
      ['logits', '--model', deep, '--ids', ids, '--out', join(root, 'd.safetensors')],
      1,
      /deep\/model\.safetensors: tensor 'a' header entry is a value nested too deeply/,
    ],
    [
      'a missing router reference',
      ['check-router', '--reference', join(root, 'nope.safetensors')],
      1,
      /nope\.safetensors/,
    ],
    [
      'dashboard --runs FILE',
      ['dashboard', '--runs', runsFile, '--port', '0'],
      2,
      /runs\.txt is a file; pass --runs DIR/,
    ],
    [
      'dashboard on 0.0.0.0 without a token',
      ['dashboard', '--runs', root, '--host', '0.0.0.0', '--port', '0'],
      2,
      /--host 0\.0\.0\.0 would serve every run .* give a token/,
    ],
  ] as const)('%s', async (_label, argv, code, message) => {
    const result = await cli([...argv]);
    expect(result.text).toMatch(message);
    expect(result.code).toBe(code);
    expect(result.text.startsWith('grin: ')).toBe(true);
    expect(result.text).not.toMatch(/\n\s+at /); // no stack frames
    expect(result.text.trimEnd().split('\n').length).toBeLessThanOrEqual(2);
  });

  it('an unusable --out fails within a second (a recursive mkdir under /proc spins forever)', async () => {
    const result = await cli([...train, '--out', '/proc/self/grin/runs']);
    expect(result.code).toBe(2);
    expect(result.ms).toBeLessThan(1000);
  });

  it('eval ppl checks --out before computing (a result is never computed and then lost)', async () => {
    const trained = await cli([
      'train',
      '--data',
      data,
      '--max-steps',
      '2',
      '--out',
      root,
      '--name',
      'small',
    ]);
    expect(trained.code).toBe(0);
    const result = await cli([
      'eval',
      'ppl',
      '--model',
      join(root, 'small'),
      '--data',
      data,
      '--out',
      '/proc/grin/ppl.json',
    ]);
    expect(result.text).toMatch(
      /^grin: eval ppl --out \/proc\/grin\/ppl\.json: cannot create \/proc\/grin \(ENOENT\)\n$/,
    );
    expect(result.code).toBe(2);
  });

  it('GRIN_DEBUG=1 adds the stack trace', async () => {
    const result = await cli(['generate', '--model', nanModel, '--prompt-ids', '1'], { GRIN_DEBUG: '1' });
    expect(result.code).toBe(1);
    expect(result.text).toMatch(/is not finite[\s\S]*\n\s+at /);
  });
});
