// `grin sft` and `grin dpo --device cuda`: on a GPU machine the loss curves (NEFTune and expert
// dropout on) match the CPU run of the same seed, tightly in f32 and within rounding in bf16.
// Without a GPU that part skips with the reason, and a run fails before training, naming it.
// Run: cd apps/trainer && npx vitest run src/post/cuda.test.ts
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cudaStatus } from '@grin-moe/kernels-cuda';
import { describe, expect, it } from 'vitest';
import { ProgressBar } from '../train/progress.js';
import { defaultPostConfig, mergePostConfig } from './config.js';
import { comparePostDevices, formatPostReport } from './device-parity.js';
import { writePostFixture } from './fixtures.js';
import { runPostTraining } from './loop.js';

const status = cudaStatus();
if (!status.available) console.log(`[trainer] skipping the sft/dpo --device cuda parity: ${status.reason}`);

describe('grin sft / dpo --device cuda', () => {
  it.skipIf(status.available)('without a GPU, fails before training with the reason', async () => {
    const root = mkdtempSync(join(tmpdir(), 'grin-post-cuda-'));
    const fixture = writePostFixture(root);
    const config = mergePostConfig(
      defaultPostConfig('sft'),
      {
        run: { out: root, name: 'x' },
        data: { initFrom: fixture.modelDir, file: fixture.chatFile },
        device: 'cuda',
      },
      'test',
    );
    const progress = new ProgressBar({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream);
    await expect(runPostTraining(config, { resume: false, progress })).rejects.toThrow(
      /sft --device cuda: cuda is unavailable: .+; use --device cpu/,
    );
  });

  for (const kind of ['sft', 'dpo'] as const)
    it.skipIf(!status.available)(
      `grin ${kind}: the cuda curves match the CPU's`,
      async () => {
        const report = await comparePostDevices(kind);
        console.log(formatPostReport(report));
        expect(report.pass).toBe(true);
      },
      600_000,
    );
});
