// Data parallelism end to end through the built CLI (apps/trainer/dist/cli.js): `grin train --dp 2`
// starts two ranks over gRPC on loopback and reproduces the single-process loss curve of the same
// seed and global batch within 1e-5 relative over 20 steps (SparseMixer-v2 sampling and jitter
// included); only rank 0 writes the run; its checkpoint resumes in one process on the same curve;
// a rank killed mid-run stops the other, naming it, and --resume continues from the last checkpoint.
// Test: pnpm turbo run build --filter=@grin-moe/trainer... && cd apps/trainer && npx vitest run src/train/data-parallel.test.ts
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { tinyConfig, writeTinyCorpus } from './fixtures.js';

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'grin-dp-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Row {
  step: number;
  loss: number;
  aux_loss: number;
  grad_norm: number;
}
function metrics(runDir: string): Row[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

function expectRelativelyClose(a: number, b: number, tolerance: number, what: string) {
  const relative = Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
  if (!(relative <= tolerance))
    throw new Error(`${what}: ${a} vs ${b} (relative ${relative.toExponential(2)} > ${tolerance})`);
}

const steps = 20;
const data = writeTinyCorpus(root);
const {
  run: _run,
  device: _device,
  dtype: _dtype,
  timeBudgetSeconds: _budget,
  ...sections
} = tinyConfig(root, data, steps);
const configFile = join(root, 'tiny.json');
writeFileSync(configFile, JSON.stringify({ ...sections, checkpoint: { every: 10, keep: 3 } }));

function train(name: string, extra: string[], env: Record<string, string> = {}) {
  return spawnSync(
    process.execPath,
    [
      cli,
      'train',
      '--config',
      configFile,
      '--out',
      root,
      '--name',
      name,
      '--seed',
      '7',
      '--time-budget',
      '0',
      ...extra,
    ],
    { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 240_000 },
  );
}

describe.skipIf(!existsSync(cli))('grin train --dp (built CLI)', () => {
  it('dp=2 gives the single-process loss curve within 1e-5 relative over 20 steps', () => {
    const single = train('single', []);
    expect(single.status, single.stderr).toBe(0);
    const dp = train('dp2', ['--dp', '2']);
    expect(dp.status, dp.stderr).toBe(0);
    const a = metrics(join(root, 'single'));
    const b = metrics(join(root, 'dp2'));
    expect(a).toHaveLength(steps);
    expect(b.map((r) => r.step)).toEqual(a.map((r) => r.step)); // rank 0 alone wrote, once per step
    a.forEach((s, i) => {
      expectRelativelyClose(b[i]!.loss, s.loss, 1e-5, `step ${s.step} loss`);
      expectRelativelyClose(b[i]!.aux_loss, s.aux_loss, 1e-5, `step ${s.step} aux loss`);
      expectRelativelyClose(b[i]!.grad_norm, s.grad_norm, 1e-4, `step ${s.step} grad norm`);
    });
    expect(a.at(-1)!.loss).toBeLessThan(a[0]!.loss - 0.1); // training moved: a match is not trivial
    expect(dp.stdout.match(/^validation cross-entropy:/gm)).toHaveLength(1); // rank 0's report, once
  });

  it('a dp=2 checkpoint resumes in one process on the same curve', () => {
    const before = metrics(join(root, 'dp2'));
    rmSync(join(root, 'dp2', 'checkpoints', 'step-20'), { recursive: true, force: true });
    const resumed = train('dp2', ['--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    const after = metrics(join(root, 'dp2'));
    expect(after).toHaveLength(steps);
    after
      .slice(10)
      .forEach((r, i) => expectRelativelyClose(r.loss, before[10 + i]!.loss, 1e-5, `resumed step ${r.step}`));
  });

  it('a rank killed mid-run stops every rank, naming it; --resume continues from the last checkpoint', () => {
    const started = Date.now();
    // Rank 1 kills itself (SIGKILL, no goodbye) after step 12, past the checkpoint of step 10.
    const killed = train('fault', ['--dp', '2'], {
      GRIN_TEST_KILL_RANK_AT_STEP: '1:12',
      GRIN_TIMEOUT_MS: '30000',
    });
    expect(killed.status).not.toBe(0);
    expect(killed.stderr).toMatch(/rank 1 failed: connection lost|rank 1 \(pid \d+\) was killed by SIGKILL/);
    expect(killed.stderr).toMatch(/train: rank 1 \(pid \d+\) was killed by SIGKILL/);
    expect(Date.now() - started).toBeLessThan(120_000);
    expect(readdirSync(join(root, 'fault', 'checkpoints'))).toContain('step-10');
    const resumed = train('fault', ['--dp', '2', '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resumed from .*step-10 at step 10/);
    const single = metrics(join(root, 'single'));
    const after = metrics(join(root, 'fault'));
    expect(after).toHaveLength(steps);
    after.forEach((r, i) => expectRelativelyClose(r.loss, single[i]!.loss, 1e-5, `fault run step ${r.step}`));
  });
});
