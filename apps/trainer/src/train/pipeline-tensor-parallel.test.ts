// Pipeline stages whose layers are tensor-parallel, end to end through the built CLI
// (apps/trainer/dist/cli.js): `grin train --pp 2 --tp 2` (4 ranks: 2 stages of the tiny 2-layer
// model, each split over 2 TP ranks, 1F1B over the step's 2 micro-batches) and `--dp 2 --pp 2 --tp 2`
// (8 ranks) reproduce the single-process loss, balance loss, gradient norm and validation curve of
// the same seed within 1e-5 relative (SparseMixer-v2 sampling, jitter and global balance over
// gradAccum 2; with NEFTune too); rank 0's checkpoint holds the single process's model.safetensors and
// optimizer.safetensors; checkpoints resume across layouts (pp 2 x tp 2 -> one process, one
// process -> pp 2 x tp 2) on the same curve; bad layouts still fail before any rank starts.
// Test: pnpm turbo run build --filter=@grin-moe/trainer... && cd apps/trainer && npx vitest run src/train/pipeline-tensor-parallel.test.ts
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadTensors } from '@grin-moe/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, expectSameCurve, type MetricsRow, metrics, tinyRuns } from './cli-runs.js';

const steps = 20;
const runs = tinyRuns('grin-pp-tp-', steps);
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

describe.skipIf(!existsSync(cli))('grin train --pp with --tp (built CLI)', () => {
  it('pp=2 x tp=2 gives the single-process curve within 1e-5 relative over 20 steps; the checkpoint is the single process’s', () => {
    const singleStarted = performance.now();
    const single = trained('single', []);
    const singleSeconds = (performance.now() - singleStarted) / 1000;
    const started = performance.now();
    const run = runs.train('pp2tp2', ['--pp', '2', '--tp', '2'], split);
    const seconds = (performance.now() - started) / 1000;
    expect(run.status, run.stderr).toBe(0);
    const worst = expectSameCurve(metrics(join(root, 'pp2tp2')), single, 'pp2tp2');
    expect(single).toHaveLength(steps);
    expect(single.at(-1)!.loss).toBeLessThan(single[0]!.loss - 0.1); // training moved: a match is not trivial
    expect(run.stdout.match(/^validation cross-entropy:/gm)).toHaveLength(1); // rank 0's report, once
    const [load, singleLoad] = ['pp2tp2', 'single'].map(
      (n) =>
        JSON.parse(readFileSync(join(root, n, 'routing', 'expert-load.json'), 'utf8')).layers as number[][],
    );
    expect(load!.flat().length).toBe(singleLoad!.flat().length);
    load!.flat().forEach((v, i) => expect(Math.abs(v - singleLoad!.flat()[i]!)).toBeLessThan(1e-3));
    const checkpoint = (n: string, file: string) => join(root, n, 'checkpoints', 'step-20', file);
    const model = fileDifference(
      checkpoint('pp2tp2', 'model.safetensors'),
      checkpoint('single', 'model.safetensors'),
    );
    const moments = fileDifference(
      checkpoint('pp2tp2', 'optimizer.safetensors'),
      checkpoint('single', 'optimizer.safetensors'),
    );
    expect(model).toBeLessThan(1e-4);
    expect(moments).toBeLessThan(1e-4);
    console.log(
      `pp=2 x tp=2 vs one process: curve ${worst.toExponential(2)}, weights ${model.toExponential(2)}, AdamW moments ${moments.toExponential(2)} (max relative difference); ${seconds.toFixed(1)} s wall (one process ${singleSeconds.toFixed(1)} s)`,
    );
  });

  it('dp=2 x pp=2 x tp=2 (8 ranks) gives the single-process curve within 1e-5 relative', () => {
    const started = performance.now();
    const worst = expectSameCurve(
      trained('dp2pp2tp2', ['--dp', '2', '--pp', '2', '--tp', '2']),
      metrics(join(root, 'single')),
      'dp2pp2tp2',
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `dp=2 x pp=2 x tp=2 vs one process: max relative difference ${worst.toExponential(2)}; ${seconds.toFixed(1)} s wall`,
    );
  });

  it('with NEFTune, pp=2 x tp=2 still draws what one process draws', () => {
    const neftune = runs.config('neftune', {
      model: { numHeads: 4, numKvHeads: 2 },
      regularize: { neftuneAlpha: 5 },
    });
    const single = trained('single-neftune', [], neftune);
    const worst = expectSameCurve(
      trained('pp2tp2-neftune', ['--pp', '2', '--tp', '2'], neftune),
      single,
      'neftune',
    );
    expect(single.map((r) => r.loss)).not.toEqual(metrics(join(root, 'single')).map((r) => r.loss)); // the noise is on
    console.log(`NEFTune pp=2 x tp=2 vs one process: max relative difference ${worst.toExponential(2)}`);
  });

  it('checkpoints resume across layouts: pp=2 x tp=2 in one process, one process at pp=2 x tp=2', () => {
    const single = metrics(join(root, 'single'));
    for (const [name, extra] of [
      ['pp2tp2', []],
      ['single', ['--pp', '2', '--tp', '2']],
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

  it('bad layouts still fail before any rank starts, naming the flag and what would do', () => {
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
    expect(fails(['--pp', '2', '--tp', '2'], oneKvHead)).toContain(
      'train: --tp 2 needs model.numKvHeads (1; numHeads 2) to divide by 2: each rank takes whole key/value heads and their query heads',
    );
    expect(fails(['--pp', '3', '--tp', '2'])).toContain(
      'train: --pp 3 needs at most 2 stages (model.numLayers is 2; each stage holds one decoder layer at least): pass --pp 2 or fewer',
    );
    const dropout = runs.config('dropout', {
      model: { numHeads: 4, numKvHeads: 2 },
      regularize: { expertDropout: 0.2 },
    });
    expect(fails(['--pp', '2', '--tp', '2'], dropout)).toContain(
      'train: --tp 2 does not support regularize.expertDropout (0.2): each rank would need its columns of the one expert mask; set it to 0 or use --tp 1',
    );
    expect(
      fails(['--pp', '2', '--tp', '2'], split, {
        RANK: '0',
        WORLD_SIZE: '2',
        MASTER_PORT: '1',
        GRIN_RUN_TOKEN: 'a-test-token',
      }),
    ).toContain(
      'train: --dp 1 --pp 2 --tp 2 needs dp x pp x tp = 4 ranks but the launcher started 2 (WORLD_SIZE/SLURM_NTASKS); pass --dp, --pp and --tp whose product is 2',
    );
  });
});
