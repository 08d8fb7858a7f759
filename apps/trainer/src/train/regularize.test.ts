// `grin train` with GRIN's regularizers as config fields (regularize.neftuneAlpha, .expertDropout):
// the same seed gives the same curve bit for bit, turning them on changes the training loss from
// the first step (the draws are applied) and not the step-0 model, and bad values are refused.
// Run: cd apps/trainer && npx vitest run src/train/regularize
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeConfig } from './config.js';
import { tinyConfig, writeTinyCorpus } from './fixtures.js';
import { runTraining } from './loop.js';
import { ProgressBar } from './progress.js';

const quiet = () =>
  new ProgressBar({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, 1_000_000);
const root = mkdtempSync(join(tmpdir(), 'grin-regularize-'));
const data = writeTinyCorpus(root);
const losses = (runDir: string) =>
  readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { loss: number }).loss);

describe('train: regularize section', () => {
  it('same seed, same curve; on vs off differ from the first step', async () => {
    const on = (name: string) =>
      mergeConfig(
        tinyConfig(join(root, name), data, 4),
        { regularize: { neftuneAlpha: 5, expertDropout: 0.2 } },
        'test',
      );
    const a = await runTraining(on('a'), { resume: false, progress: quiet() });
    const b = await runTraining(on('b'), { resume: false, progress: quiet() });
    const off = await runTraining(tinyConfig(join(root, 'off'), data, 4), {
      resume: false,
      progress: quiet(),
    });
    expect(losses(a.runDir)).toEqual(losses(b.runDir));
    expect(losses(a.runDir)[0]).not.toBe(losses(off.runDir)[0]);
    expect(JSON.parse(readFileSync(join(a.runDir, 'config.json'), 'utf8')).regularize).toEqual({
      neftuneAlpha: 5,
      expertDropout: 0.2,
    });
  });

  it.each([
    [{ expertDropout: 1 }, 'test: regularize.expertDropout (1) must be <= 0.95'],
    [{ neftuneAlpha: -1 }, 'test: regularize.neftuneAlpha (-1) must be >= 0'],
    [{ noise: 1 }, "test: unknown field 'regularize.noise'"],
  ])('%j is refused', (patch, message) => {
    expect(() => mergeConfig(tinyConfig(root, data), { regularize: patch }, 'test')).toThrow(message);
  });
});
