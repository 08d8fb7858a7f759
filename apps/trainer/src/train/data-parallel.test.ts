// Data parallelism end to end through the built CLI (apps/trainer/dist/cli.js): `grin train --dp 2`
// starts two ranks over gRPC on loopback and reproduces the single-process loss curve of the same
// seed and global batch within 1e-5 relative over 20 steps (SparseMixer-v2 sampling and jitter
// included); only rank 0 writes the run; its checkpoint resumes in one process on the same curve;
// a worker process SIGKILLed mid-run (found in /proc, killed by this test) stops the other, naming
// it, and --resume continues from the last checkpoint.
// Test: pnpm turbo run build --filter=@grin-moe/trainer... && cd apps/trainer && npx vitest run src/train/data-parallel.test.ts
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, expectRelativelyClose, metrics, tinyRuns, workerPid } from './cli-runs.js';

const steps = 20;
const { root, args: trainArgs, train } = tinyRuns('grin-dp-', steps);
afterAll(() => rmSync(root, { recursive: true, force: true }));

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

  it('a rank killed mid-run stops every rank, naming it; --resume continues from the last checkpoint', async () => {
    const started = Date.now();
    const launcher = spawn(process.execPath, [cli, 'train', ...trainArgs('fault', ['--dp', '2'])], {
      env: { ...process.env, GRIN_TIMEOUT_MS: '30000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    launcher.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    launcher.stdout.resume();
    const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)));
    // Rank 1 is SIGKILLed (no goodbye to its peers) once rank 0 has logged step 11, past the
    // complete checkpoint of step 10 and before the run's end.
    const metricsFile = join(root, 'fault', 'metrics.jsonl');
    let victim: number | undefined;
    while (victim === undefined && launcher.exitCode === null) {
      await new Promise((r) => setTimeout(r, 10));
      const rows = existsSync(metricsFile) ? readFileSync(metricsFile, 'utf8').split('\n').length - 1 : 0;
      if (rows >= 11) {
        victim = workerPid(launcher.pid!, 1);
        process.kill(victim, 'SIGKILL');
      }
    }
    const code = await exited;
    if (victim === undefined)
      throw new Error(`the fault run ended before rank 1 could be killed:\n${stderr}`);
    expect(code).not.toBe(0);
    expect(stderr).toContain(`train: rank 1 (pid ${victim}) was killed by SIGKILL`);
    expect(stderr).toMatch(/^grin: rank 1 failed: connection lost/m); // rank 0, stopped by the dead peer
    expect(metrics(join(root, 'fault')).length).toBeLessThan(steps);
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
