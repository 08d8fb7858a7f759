// `grin generate`: --prompt-ids on a fixture model (greedy output deterministic, one write per
// token), --seed / --temperature / --top-p each change the sampled tokens exactly as the library's
// generate() does, --prompt TEXT through a model directory's tokenizer.json, and bad flags named.
// Run: cd apps/trainer && npx vitest run src/commands/generate
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, initRandom, loadModel, parseConfig, saveModel, trainBpe } from '@grin-moe/model-grin';
import { Generator } from '@grin-moe/tensor';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { generateCommand } from './generate.js';

const fixture = join(import.meta.dirname, '../../../../packages/model-grin/fixtures/mqa-e6');

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[]): Promise<{ code: number; writes: string[] }> {
  const writes: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    writes.push(String(chunk));
    return true;
  });
  try {
    return { code: await generateCommand.run(argv), writes };
  } finally {
    spy.mockRestore();
  }
}

describe('grin generate', () => {
  it('streams greedy tokens from --prompt-ids, reproducibly', async () => {
    const a = await run(['--model', fixture, '--prompt-ids', '13,49,45', '--max-new-tokens', '6']);
    expect(a.code).toBe(0);
    expect(a.writes).toHaveLength(7);
    const b = await run(['--model', fixture, '--prompt-ids', '13,49,45', '--max-new-tokens', '6']);
    expect(b.writes.join('')).toEqual(a.writes.join(''));
    expect(
      a.writes
        .join('')
        .trim()
        .split(' ')
        .map(Number)
        .every((t) => t >= 0 && t < 80),
    ).toBe(true);
  });
  it('samples reproducibly with a seed', async () => {
    const args = [
      '--model',
      fixture,
      '--prompt-ids',
      '1,2',
      '--max-new-tokens',
      '8',
      '--temperature',
      '1',
      '--top-p',
      '0.9',
      '--seed',
      '5',
    ];
    expect((await run(args)).writes.join('')).toEqual((await run(args)).writes.join(''));
  });
  it('--seed, --temperature and --top-p reach the sampler: each changes the tokens as the library does', async () => {
    const model = loadModel(fixture);
    const stopTokens = model.config.eosTokenIds;
    const sample = async (seed: number, temperature: number, topP: number) => {
      const cli = await run([
        '--model',
        fixture,
        '--prompt-ids',
        '1,2',
        '--max-new-tokens',
        '8',
        '--temperature',
        String(temperature),
        '--top-p',
        String(topP),
        '--seed',
        String(seed),
      ]);
      const reference = generate(model, [1, 2], {
        maxNewTokens: 8,
        temperature,
        topP,
        generator: new Generator(seed),
        stopTokens,
      }).tokens;
      const tokens = cli.writes.join('').trim().split(' ').map(Number);
      expect(tokens, `seed ${seed}, temperature ${temperature}, top-p ${topP}`).toEqual(reference);
      return tokens.join(',');
    };
    const base = await sample(5, 1, 0.9);
    const changed = [await sample(6, 1, 0.9), await sample(5, 0.3, 0.9), await sample(5, 1, 0.2)];
    for (const other of changed) expect(other).not.toBe(base);
    // Greedy decoding draws nothing: the seed does not matter there.
    expect(await sample(1, 0, 1)).toBe(await sample(2, 0, 1));
    model.dispose();
  });
  it('encodes --prompt with the directory tokenizer and streams decoded text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'grin-generate-'));
    dirs.push(dir);
    const texts = ['the cat sat on the mat', 'the dog sat on the log', 'a cat and a dog'];
    const tokenizer = trainBpe(texts, { vocabSize: 300, minFrequency: 1 });
    tokenizer.save(dir);
    const config = parseConfig({
      vocab_size: 320,
      hidden_size: 16,
      intermediate_size: 8,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_local_experts: 3,
      rope_theta: 10000,
      eos_token_id: 2,
    });
    saveModel(dir, initRandom(config, new Generator(4)));
    const { code, writes } = await run(['--model', dir, '--prompt', 'the cat', '--max-new-tokens', '5']);
    expect(code).toBe(0);
    expect(writes.at(-1)).toBe('\n');
    expect(writes.join('').length).toBeGreaterThan(1);
    const again = await run(['--model', dir, '--prompt', 'the cat', '--max-new-tokens', '5']);
    expect(again.writes.join('')).toBe(writes.join(''));
    await expect(run(['--model', fixture, '--prompt', 'hi'])).rejects.toThrow(
      /tokenizer\.json not found.*--prompt-ids/,
    );
  });
  it('names bad input', async () => {
    await expect(run(['--prompt-ids', '1'])).rejects.toThrow(/--model DIR is required/);
    await expect(run(['--model', fixture])).rejects.toThrow(/exactly one of --prompt TEXT or --prompt-ids/);
    await expect(run(['--model', fixture, '--prompt-ids', '1,x'])).rejects.toThrow(/--prompt-ids must be/);
    await expect(run(['--model', fixture, '--prompt-ids', '1', '--top-p', '1.5'])).rejects.toThrow(
      /--top-p must be in/,
    );
  });
});
