// `grin train --device cuda`: on a GPU machine the first 20 losses match the CPU run of the same
// seed (tightly in f32, within bf16 rounding in bf16). Without a GPU that part skips with the
// reason, and the run must fail before training with a message that names it.
// Run: cd apps/trainer && npx vitest run src/train/cuda.test.ts
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cudaStatus } from '@grin-moe/kernels-cuda';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../commands/train.js';
import { mergeConfig } from './config.js';
import { compareDevices, formatReport } from './device-parity.js';
import { tinyConfig, writeTinyCorpus } from './fixtures.js';
import { runTraining } from './loop.js';
import { ProgressBar } from './progress.js';

const status = cudaStatus();
if (!status.available) console.log(`[trainer] skipping the --device cuda parity test: ${status.reason}`);
const quiet = () =>
  new ProgressBar({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, 1_000_000);

describe('grin train --device cuda', () => {
  it('accepts --device cuda --dtype bf16 and refuses bf16 on the CPU, naming why', () => {
    const config = resolveConfig({ device: 'cuda', dtype: 'bf16' });
    expect([config.device, config.dtype]).toEqual(['cuda', 'bf16']);
    expect(() => resolveConfig({ dtype: 'bf16' })).toThrow(/dtype bf16 needs device cuda/);
    expect(() => resolveConfig({ device: 'cuda', dtype: 'f16' })).toThrow(
      /dtype \("f16"\) must be one of f32, bf16/,
    );
  });

  it.skipIf(status.available)('without a GPU, fails before training with the reason', async () => {
    const root = mkdtempSync(join(tmpdir(), 'grin-cuda-'));
    const config = mergeConfig(
      tinyConfig(join(root, 'run'), writeTinyCorpus(root)),
      { device: 'cuda' },
      'test',
    );
    await expect(runTraining(config, { resume: false, progress: quiet() })).rejects.toThrow(
      /train --device cuda: cuda is unavailable: .+; use --device cpu/,
    );
  });

  it.skipIf(!status.available)(
    'the first 20 losses match the CPU run of the same seed (f32 tightly, bf16 within rounding)',
    async () => {
      const report = await compareDevices(20);
      console.log(formatReport(report));
      expect(report.pass).toBe(true);
    },
    600_000,
  );
});
