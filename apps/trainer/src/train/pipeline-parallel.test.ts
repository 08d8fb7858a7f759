// Pipeline parallelism end to end through the built CLI (apps/trainer/dist/cli.js): `grin train
// --pp 2` (2 stages of the tiny 2-layer model, 1F1B over the step's 2 micro-batches) and `--dp 2
// --pp 2` (4 ranks) reproduce the single-process loss, balance loss, gradient norm and validation
// curve of the same seed and global batch within 1e-5 relative over 20 steps (SparseMixer-v2
// sampling, jitter and global balance included; also with NEFTune and expert dropout); rank 0 alone
// writes, and its checkpoint is the single process's model.safetensors; checkpoints resume across
// layouts (pp 2 -> one process, one process -> dp 2 x pp 2) on the same curve; bad layouts fail
// before any rank starts, naming the flag; a stage SIGKILLed mid-run stops the other, named.
// Test: pnpm turbo run build --filter=@grin-moe/trainer... && cd apps/trainer && npx vitest run src/train/pipeline-parallel.test.ts
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadTensors } from '@grin-moe/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, expectSameCurve, type MetricsRow, metrics, tinyRuns, workerPid } from './cli-runs.js';

const steps = 20;
const runs = tinyRuns('grin-pp-', steps);
const { root, train } = runs;
afterAll(() => rmSync(root, { recursive: true, force: true }));

function trained(name: string, extra: string[], configFile?: string): MetricsRow[] {
  const result = train(name, extra, configFile);
  expect(result.status, result.stderr).toBe(0);
  return metrics(join(root, name));
}

describe.skipIf(!existsSync(cli))('grin train --pp (built CLI)', () => {
  it('pp=2 gives the single-process curve within 1e-5 relative over 20 steps; the checkpoint is the single process’s', () => {
    const single = trained('single', []);
    const pp = train('pp2', ['--pp', '2']);
    expect(pp.status, pp.stderr).toBe(0);
    const worst = expectSameCurve(metrics(join(root, 'pp2')), single, 'pp2');
    expect(single).toHaveLength(steps);
    expect(single.at(-1)!.loss).toBeLessThan(single[0]!.loss - 0.1); // training moved: a match is not trivial
    expect(pp.stdout.match(/^validation cross-entropy:/gm)).toHaveLength(1); // rank 0's report, once
    // The routing report at the end runs on the whole model, gathered on rank 0.
    const [load, singleLoad] = ['pp2', 'single'].map(
      (n) =>
        JSON.parse(readFileSync(join(root, n, 'routing', 'expert-load.json'), 'utf8')).layers as number[][],
    );
    expect(load!.flat().length).toBe(singleLoad!.flat().length);
    load!.flat().forEach((v, i) => expect(Math.abs(v - singleLoad!.flat()[i]!)).toBeLessThan(1e-3));
    const [a, b] = ['single', 'pp2'].map((n) =>
      loadTensors(join(root, n, 'checkpoints', 'step-20', 'model.safetensors')),
    );
    expect(Object.keys(b!).sort()).toEqual(Object.keys(a!).sort());
    for (const [name, t] of Object.entries(a!)) {
      const x = t.toArray() as Float32Array;
      const y = b![name]!.toArray() as Float32Array;
      const scale = Math.max(...x.map(Math.abs));
      expect(Math.max(...x.map((v, i) => Math.abs(v - y[i]!))) / scale, name).toBeLessThan(1e-4);
    }
    console.log(`pp=2 vs one process: max relative difference ${worst.toExponential(2)}`);
  });

  it('dp=2 x pp=2 (4 ranks) gives the single-process curve within 1e-5 relative', () => {
    const worst = expectSameCurve(
      trained('dp2pp2', ['--dp', '2', '--pp', '2']),
      metrics(join(root, 'single')),
      'dp2pp2',
    );
    console.log(`dp=2 x pp=2 vs one process: max relative difference ${worst.toExponential(2)}`);
  });

  it('with NEFTune and expert dropout, pp=2 still draws what one process draws', () => {
    const regularized = runs.config('regularized', { regularize: { neftuneAlpha: 5, expertDropout: 0.2 } });
    const single = trained('single-regularized', [], regularized);
    const worst = expectSameCurve(
      trained('pp2-regularized', ['--pp', '2'], regularized),
      single,
      'regularized',
    );
    console.log(`regularized pp=2 vs one process: max relative difference ${worst.toExponential(2)}`);
  });

  it('checkpoints resume across layouts: pp=2 in one process, one process at dp=2 x pp=2', () => {
    const single = metrics(join(root, 'single'));
    for (const [name, extra] of [
      ['pp2', []],
      ['single', ['--dp', '2', '--pp', '2']],
    ] as const) {
      rmSync(join(root, name, 'checkpoints', 'step-20'), { recursive: true, force: true });
      const resumed = train(name, ['--resume', ...extra]);
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.stderr).toMatch(/resumed from .*step-10 at step 10/);
      expectSameCurve(metrics(join(root, name)), single, `${name} resumed with [${extra.join(' ')}]`);
    }
  });

  it('bad layouts fail before any rank starts, naming the flag and what would do', () => {
    const fails = (extra: string[], env: Record<string, string> = {}) => {
      const result = spawnSync(process.execPath, [cli, 'train', ...runs.args('bad', extra)], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, ...env },
      });
      expect(result.status).not.toBe(0);
      expect(existsSync(join(root, 'bad', 'metrics.jsonl'))).toBe(false);
      return result.stderr;
    };
    expect(fails(['--pp', '3'])).toContain(
      'train: --pp 3 needs at most 2 stages (model.numLayers is 2; each stage holds one decoder layer at least): pass --pp 2 or fewer',
    );
    expect(fails(['--dp', '3', '--pp', '2'])).toContain(
      'train: --dp 3 needs optim.batchSize (4) to divide by 3: use a batch size that is a multiple of 3',
    );
    expect(fails(['--pp', '2', '--device', 'cuda'])).toContain(
      'train: --pp 2 runs on the CPU only (activations travel through the grpc group as CPU tensors): use --device cpu or --pp 1',
    );
    // Under an external launcher (torchrun's variables) the world must hold dp x pp ranks.
    expect(
      fails(['--dp', '2', '--pp', '2'], {
        RANK: '0',
        WORLD_SIZE: '3',
        MASTER_PORT: '1',
        GRIN_RUN_TOKEN: 'a-test-token',
      }),
    ).toContain(
      'train: --dp 2 --pp 2 needs dp x pp = 4 ranks but the launcher started 3 (WORLD_SIZE/SLURM_NTASKS); pass --dp and --pp whose product is 3',
    );
  });

  it('a stage killed mid-run stops every rank, naming it; --resume continues from the last checkpoint', async () => {
    const launcher = spawn(process.execPath, [cli, 'train', ...runs.args('fault', ['--pp', '2'])], {
      env: { ...process.env, GRIN_TIMEOUT_MS: '30000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    launcher.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    launcher.stdout.resume();
    const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)));
    // Stage 1 (rank 1) is SIGKILLed once rank 0 has logged step 11, past the checkpoint of step 10.
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
    expect(stderr).toMatch(/^grin: rank 1 failed: connection lost/m); // rank 0, stopped by the dead stage
    expect(metrics(join(root, 'fault')).length).toBeLessThan(steps);
    expect(readdirSync(join(root, 'fault', 'checkpoints'))).toContain('step-10');
    const resumed = train('fault', ['--pp', '2', '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expectSameCurve(metrics(join(root, 'fault')), metrics(join(root, 'single')), 'fault run');
  });
});
