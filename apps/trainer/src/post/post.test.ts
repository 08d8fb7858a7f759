// `grin sft` and `grin dpo` end to end on a tiny model and chat set: the run layout of `grin train`
// (config.json, metrics.jsonl, checkpoints with the chat template, listed by the dashboard), the
// same seed giving the same curve bit for bit with NEFTune and expert dropout on, a run stopped by
// its time budget and resumed equal to the uninterrupted one, the assistant-token loss falling
// (packed and padded), DPO's logged rewards, margin and accuracy, DPO's held-out reward margin and
// accuracy rising, and the CLI's refusals.
// Run: cd apps/trainer && npx vitest run src/post/post.test.ts
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listRuns } from '@grin-moe/dashboard';
import { describe, expect, it } from 'vitest';
import { runCli } from '../run-cli.js';
import { ProgressBar } from '../train/progress.js';
import { defaultPostConfig, mergePostConfig, type PostConfig } from './config.js';
import { writePostFixture } from './fixtures.js';
import { runPostTraining } from './loop.js';

const quiet = () =>
  new ProgressBar({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, 1_000_000);
const root = mkdtempSync(join(tmpdir(), 'grin-post-'));
const { modelDir, chatFile, prefFile } = writePostFixture(root);

function config(kind: 'sft' | 'dpo', name: string, patch: Record<string, unknown> = {}): PostConfig {
  return mergePostConfig(
    defaultPostConfig(kind),
    {
      run: { out: root, name },
      data: {
        initFrom: modelDir,
        file: kind === 'sft' ? chatFile : prefFile,
        seqLen: 64,
        validationFraction: 0.2,
      },
      optim: { steps: 6, batchSize: 4, warmupSteps: 1, lr: kind === 'sft' ? 3e-3 : 1e-3 },
      eval: { every: 3 },
      checkpoint: { every: 2, keep: 5 },
      ...patch,
    },
    'test',
  );
}

const metrics = (runDir: string) =>
  readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const { tokens_per_s: _time, ...rest } = JSON.parse(line) as Record<string, number>;
      return rest;
    });

describe('grin sft', () => {
  it('same seed, same curve (regularizers on); the run layout; the loss falls', async () => {
    const a = await runPostTraining(config('sft', 'a'), { resume: false, progress: quiet() });
    const b = await runPostTraining(config('sft', 'b'), { resume: false, progress: quiet() });
    expect(metrics(a.runDir)).toEqual(metrics(b.runDir));
    expect(metrics(a.runDir)).toHaveLength(6);
    expect(Object.keys(metrics(a.runDir)[2]!)).toEqual(
      expect.arrayContaining(['step', 'tokens', 'loss', 'lr', 'grad_norm', 'aux_loss', 'val_loss']),
    );
    expect(a.counts).toEqual({ train: 14, validation: 4, truncated: 0, dropped: 0 });
    expect(a.template).toBe('built-in plain template');
    const checkpoint = join(a.runDir, 'checkpoints', 'step-6');
    for (const file of [
      'model.safetensors',
      'tokenizer.json',
      'chat_template.jinja',
      'state.json',
      'manifest.json',
    ])
      expect(existsSync(join(checkpoint, file)), file).toBe(true);
    expect(a.after.loss).toBeLessThan(a.before.loss!);
    // the dashboard lists the run as it lists training runs
    const listed = (await listRuns(root)).find((run) => run.name === 'a');
    expect(listed).toMatchObject({ state: 'finished', last: { step: 6 }, files: { metrics: true } });
    // another seed, another curve; without the regularizers, another curve too
    const c = await runPostTraining(config('sft', 'c', { run: { out: root, name: 'c', seed: 9 } }), {
      resume: false,
      progress: quiet(),
    });
    expect(metrics(c.runDir)).not.toEqual(metrics(a.runDir));
    const d = await runPostTraining(
      config('sft', 'd', { regularize: { neftuneAlpha: 0, expertDropout: 0 } }),
      {
        resume: false,
        progress: quiet(),
      },
    );
    expect(metrics(d.runDir)[0]!.loss).not.toBe(metrics(a.runDir)[0]!.loss);
  });

  it('stopped by the time budget and resumed equals the uninterrupted run', async () => {
    const full = await runPostTraining(config('sft', 'full'), { resume: false, progress: quiet() });
    const cut = await runPostTraining(
      { ...config('sft', 'cut'), timeBudgetSeconds: 1e-6 },
      {
        resume: false,
        progress: quiet(),
      },
    );
    expect(cut.steps).toBe(1);
    const resumed = await runPostTraining(config('sft', 'cut'), { resume: true, progress: quiet() });
    expect(resumed.steps).toBe(6);
    expect(metrics(resumed.runDir)).toEqual(metrics(full.runDir));
    expect(resumed.before).toEqual(full.before);
  });

  it('refuses a resume with another config, and a second run in the same directory', async () => {
    await expect(
      runPostTraining(config('sft', 'full', { regularize: { neftuneAlpha: 1, expertDropout: 0.1 } }), {
        resume: true,
        progress: quiet(),
      }),
    ).rejects.toThrow('regularize.neftuneAlpha: the run has 5, given 1');
    await expect(
      runPostTraining(config('sft', 'full'), { resume: false, progress: quiet() }),
    ).rejects.toThrow('already holds a run (checkpoint step 6); pass --resume');
  });
  it('padded rows (--no-pack) train too; packing is refused for dpo', async () => {
    const padded = await runPostTraining(
      config('sft', 'padded', { data: { initFrom: modelDir, file: chatFile, seqLen: 64, pack: false } }),
      { resume: false, progress: quiet() },
    );
    expect(metrics(padded.runDir)).toHaveLength(6);
    expect(padded.after.loss).toBeLessThan(padded.before.loss!);
    expect(() => mergePostConfig(defaultPostConfig('dpo'), { data: { pack: true } }, 'x.yaml')).toThrow(
      'x.yaml: data.pack is for sft only',
    );
  });

  it('a run directory as --init-from is saved as its newest checkpoint', async () => {
    const run = await runPostTraining(
      config('sft', 'from-run', {
        data: { initFrom: join(root, 'full'), file: chatFile, seqLen: 64 },
        optim: { steps: 1, batchSize: 2, warmupSteps: 0 },
      }),
      { resume: false, progress: quiet() },
    );
    const saved = JSON.parse(readFileSync(join(run.runDir, 'config.json'), 'utf8'));
    expect(saved.data.initFrom).toBe(join(root, 'full', 'checkpoints', 'step-6'));
    expect(run.initDir).toBe(saved.data.initFrom);
  });
});

describe('grin dpo', () => {
  it('logs rewards, margin and accuracy; the held-out chosen answers become preferred', async () => {
    const run = await runPostTraining(
      config('dpo', 'dpo', {
        optim: { steps: 12, batchSize: 4, lr: 3e-3, warmupSteps: 1 },
        dpo: { beta: 0.5 },
      }),
      { resume: false, progress: quiet() },
    );
    const rows = metrics(run.runDir);
    expect(Object.keys(rows[0]!)).toEqual(
      expect.arrayContaining(['rewards_chosen', 'rewards_rejected', 'rewards_margin', 'rewards_accuracy']),
    );
    for (const row of rows) {
      expect(row.rewards_margin).toBeCloseTo(row.rewards_chosen! - row.rewards_rejected!, 6);
      expect(row.loss).toBeGreaterThan(0);
    }
    // before training the policy is the reference: every reward is 0
    expect(run.before.reward_margin).toBe(0);
    expect(run.before.reward_accuracy).toBe(0);
    expect(rows.at(-1)!.rewards_margin).toBeGreaterThan(1);
    expect(rows.at(-1)!.rewards_accuracy).toBe(1);
    // held out: the rejected answers share a style the policy learns to avoid
    expect(run.after.reward_margin).toBeGreaterThan(1);
    expect(run.after.reward_accuracy).toBe(1);
  });
});

describe('the CLI', () => {
  const cli = async (argv: string[]) => {
    let stderr = '';
    const code = await runCli(argv, {
      write: (text: string) => {
        stderr += text;
      },
    });
    return { code, stderr };
  };

  it.skipIf(existsSync('runs/brown-grin'))(
    'the default without runs/brown-grin says to run pnpm train',
    async () => {
      const { code, stderr } = await cli(['sft', '--out', root]);
      expect(stderr).toBe(
        'grin: sft --init-from: runs/brown-grin: no such directory (the embedded default starts from runs/brown-grin: run `pnpm train` first, or pass --init-from DIR)\n',
      );
      expect(code).toBe(1);
    },
  );

  it.each([
    [['sft', '--expert-dropout', '2'], 2, 'command line: regularize.expertDropout (2) must be <= 0.95'],
    [['sft', '--reference', 'x'], 2, 'sft: unknown flag --reference'],
    [
      ['dpo', '--init-from', '/nonexistent/model', '--out', root],
      2,
      'dpo --init-from: /nonexistent/model: no such directory',
    ],
  ])('%j exits %i naming the problem', async (argv, exitCode, message) => {
    const { code, stderr } = await cli(argv as string[]);
    expect(stderr).toContain(message);
    expect(code).toBe(exitCode);
  });
});
