// Tensor parallelism end to end through the built CLI (apps/trainer/dist/cli.js): `grin train --tp 2`
// (attention heads and every expert's intermediate dim split over 2 ranks) and `--dp 2 --tp 2`
// (4 ranks) reproduce the single-process loss, balance loss, gradient norm and validation curve of
// the same seed and global batch within 1e-5 relative over 20 steps (tiny 2-layer model with 4
// query heads over 2 kv heads; SparseMixer-v2 sampling, jitter and global balance over gradAccum 2);
// rank 0 alone writes, and its checkpoint holds the single process's model.safetensors and
// optimizer.safetensors; NEFTune's noise is drawn as one process draws it; ranks started by an
// external launcher (torchrun's variables) train as well; checkpoints resume across layouts (tp 2
// -> one process, one process -> dp 2 x tp 2) on the same curve; bad layouts fail before any rank starts, naming the flag; a TP rank
// SIGKILLed mid-run stops the other, named by the launcher.
// Test: pnpm turbo run build --filter=@grin-moe/trainer... && cd apps/trainer && npx vitest run src/train/tensor-parallel-train.test.ts
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@grin-moe/parallel';
import { loadTensors } from '@grin-moe/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, expectSameCurve, type MetricsRow, metrics, tinyRuns, workerPid } from './cli-runs.js';

const steps = 20;
const runs = tinyRuns('grin-tp-', steps);
const { root } = runs;
// tp 2 needs kv heads and intermediate size that divide by 2 (the tiny config has 1 kv head).
const split = runs.config('split', { model: { numHeads: 4, numKvHeads: 2 } });
afterAll(() => rmSync(root, { recursive: true, force: true }));

function trained(name: string, extra: string[], configFile = split): MetricsRow[] {
  const result = runs.train(name, extra, configFile);
  expect(result.status, result.stderr).toBe(0);
  return metrics(join(root, name));
}

/** max |a - b| / max |b| over every tensor of two safetensors files with the same names. */
function fileDifference(got: string, expected: string): number {
  const [a, b] = [loadTensors(got), loadTensors(expected)];
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  let worst = 0;
  for (const [name, t] of Object.entries(b)) {
    const y = t.toArray() as Float32Array;
    const x = a[name]!.toArray() as Float32Array;
    expect(a[name]!.shape, name).toEqual(t.shape);
    const scale = Math.max(1e-30, ...y.map(Math.abs));
    worst = Math.max(worst, Math.max(...x.map((v, i) => Math.abs(v - y[i]!))) / scale);
  }
  return worst;
}

describe.skipIf(!existsSync(cli))('grin train --tp (built CLI)', () => {
  it('tp=2 gives the single-process curve within 1e-5 relative over 20 steps; the checkpoint is the single process’s', () => {
    const single = trained('single', []);
    const tp = runs.train('tp2', ['--tp', '2'], split);
    expect(tp.status, tp.stderr).toBe(0);
    const worst = expectSameCurve(metrics(join(root, 'tp2')), single, 'tp2');
    expect(single).toHaveLength(steps);
    expect(single.at(-1)!.loss).toBeLessThan(single[0]!.loss - 0.1); // training moved: a match is not trivial
    expect(tp.stdout.match(/^validation cross-entropy:/gm)).toHaveLength(1); // rank 0's report, once
    // The routing report at the end runs on the whole model, gathered on rank 0.
    const [load, singleLoad] = ['tp2', 'single'].map(
      (n) =>
        JSON.parse(readFileSync(join(root, n, 'routing', 'expert-load.json'), 'utf8')).layers as number[][],
    );
    expect(load!.flat().length).toBe(singleLoad!.flat().length);
    load!.flat().forEach((v, i) => expect(Math.abs(v - singleLoad!.flat()[i]!)).toBeLessThan(1e-3));
    // The gathered weights and AdamW moments, under the single process's names and numbering.
    const checkpoint = (n: string, file: string) => join(root, n, 'checkpoints', 'step-20', file);
    const model = fileDifference(
      checkpoint('tp2', 'model.safetensors'),
      checkpoint('single', 'model.safetensors'),
    );
    const moments = fileDifference(
      checkpoint('tp2', 'optimizer.safetensors'),
      checkpoint('single', 'optimizer.safetensors'),
    );
    expect(model).toBeLessThan(1e-4);
    expect(moments).toBeLessThan(1e-4);
    console.log(
      `tp=2 vs one process: curve ${worst.toExponential(2)}, weights ${model.toExponential(2)}, AdamW moments ${moments.toExponential(2)} (max relative difference)`,
    );
  });

  it('dp=2 x tp=2 (4 ranks) gives the single-process curve within 1e-5 relative', () => {
    const worst = expectSameCurve(
      trained('dp2tp2', ['--dp', '2', '--tp', '2']),
      metrics(join(root, 'single')),
      'dp2tp2',
    );
    console.log(`dp=2 x tp=2 vs one process: max relative difference ${worst.toExponential(2)}`);
  });

  it('with NEFTune, dp=2 x tp=2 still draws what one process draws', () => {
    const neftune = runs.config('neftune', {
      model: { numHeads: 4, numKvHeads: 2 },
      regularize: { neftuneAlpha: 5 },
    });
    const single = trained('single-neftune', [], neftune);
    const worst = expectSameCurve(
      trained('dp2tp2-neftune', ['--dp', '2', '--tp', '2'], neftune),
      single,
      'neftune',
    );
    expect(single.map((r) => r.loss)).not.toEqual(metrics(join(root, 'single')).map((r) => r.loss)); // the noise is on
    console.log(`NEFTune dp=2 x tp=2 vs one process: max relative difference ${worst.toExponential(2)}`);
  });

  it('runs under an external launcher: two ranks started with torchrun’s variables train at --tp 2', async () => {
    const port = await freePort();
    const ranks = [0, 1].map((rank) => {
      const child = spawn(process.execPath, [cli, 'train', ...runs.args('external', ['--tp', '2'], split)], {
        env: {
          ...process.env,
          RANK: String(rank),
          WORLD_SIZE: '2',
          LOCAL_RANK: String(rank),
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(port),
          GRIN_RUN_TOKEN: 'an-external-launcher-token',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      return new Promise<{ code: number | null; stderr: string }>((resolve) =>
        child.on('exit', (code) => resolve({ code, stderr })),
      );
    });
    for (const { code, stderr } of await Promise.all(ranks)) expect(code, stderr).toBe(0);
    const worst = expectSameCurve(metrics(join(root, 'external')), metrics(join(root, 'single')), 'external');
    console.log(
      `tp=2 under an external launcher vs one process: max relative difference ${worst.toExponential(2)}`,
    );
  });

  it('checkpoints resume across layouts: tp=2 in one process, one process at dp=2 x tp=2', () => {
    const single = metrics(join(root, 'single'));
    for (const [name, extra] of [
      ['tp2', []],
      ['single', ['--dp', '2', '--tp', '2']],
    ] as const) {
      rmSync(join(root, name, 'checkpoints', 'step-20'), { recursive: true, force: true });
      const resumed = runs.train(name, ['--resume', ...extra], split);
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.stderr).toMatch(/resumed from .*step-10 at step 10/);
      const worst = expectSameCurve(
        metrics(join(root, name)),
        single,
        `${name} resumed with [${extra.join(' ')}]`,
      );
      console.log(
        `${name} resumed with [${extra.join(' ')}]: max relative difference ${worst.toExponential(2)}`,
      );
    }
  });

  it('bad layouts fail before any rank starts, naming the flag and what would do', () => {
    const fails = (extra: string[], configFile = split, env: Record<string, string> = {}) => {
      const result = spawnSync(process.execPath, [cli, 'train', ...runs.args('bad', extra, configFile)], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, ...env },
      });
      expect(result.status).not.toBe(0);
      expect(existsSync(join(root, 'bad', 'metrics.jsonl'))).toBe(false);
      return result.stderr;
    };
    const oneKvHead = runs.config('one-kv-head', {}); // the tiny config: 2 heads over 1 kv head
    expect(fails(['--tp', '2'], oneKvHead)).toContain(
      'train: --tp 2 needs model.numKvHeads (1; numHeads 2) to divide by 2: each rank takes whole key/value heads and their query heads',
    );
    const oddIntermediate = runs.config('odd-intermediate', {
      model: { numHeads: 4, numKvHeads: 2, intermediateSize: 25 },
    });
    expect(fails(['--tp', '2'], oddIntermediate)).toContain(
      'train: --tp 2 needs model.intermediateSize (25) to divide by 2: each rank takes intermediateSize / tp of every expert',
    );
    expect(fails(['--tp', '2', '--device', 'cuda'])).toContain(
      'train: --tp 2 runs on the CPU only (partial sums travel through the grpc group as CPU tensors): use --device cpu or --tp 1',
    );
    const dropout = runs.config('dropout', {
      model: { numHeads: 4, numKvHeads: 2 },
      regularize: { expertDropout: 0.2 },
    });
    expect(fails(['--tp', '2'], dropout)).toContain(
      'train: --tp 2 does not support regularize.expertDropout (0.2): each rank would need its columns of the one expert mask; set it to 0 or use --tp 1',
    );
    // Under an external launcher (torchrun's variables) the world must hold dp x pp x tp ranks.
    expect(
      fails(['--dp', '2', '--tp', '2'], split, {
        RANK: '0',
        WORLD_SIZE: '2',
        MASTER_PORT: '1',
        GRIN_RUN_TOKEN: 'a-test-token',
      }),
    ).toContain(
      'train: --dp 2 --pp 1 --tp 2 needs dp x pp x tp = 4 ranks but the launcher started 2 (WORLD_SIZE/SLURM_NTASKS); pass --dp, --pp and --tp whose product is 2',
    );
  });

  it('a TP rank killed mid-run stops every rank, naming it; --resume continues from the last checkpoint', async () => {
    const launcher = spawn(process.execPath, [cli, 'train', ...runs.args('fault', ['--tp', '2'], split)], {
      env: { ...process.env, GRIN_TIMEOUT_MS: '30000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    launcher.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    launcher.stdout.resume();
    const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)));
    // TP rank 1 is SIGKILLed once rank 0 has logged step 11, past the checkpoint of step 10.
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
    expect(stderr).toMatch(/^grin: rank 1 failed: connection lost/m); // rank 0, stopped by its dead TP peer
    expect(metrics(join(root, 'fault')).length).toBeLessThan(steps);
    expect(readdirSync(join(root, 'fault', 'checkpoints'))).toContain('step-10');
    const resumed = runs.train('fault', ['--tp', '2', '--resume'], split);
    expect(resumed.status, resumed.stderr).toBe(0);
    expectSameCurve(metrics(join(root, 'fault')), metrics(join(root, 'single')), 'fault run');
  });
});
