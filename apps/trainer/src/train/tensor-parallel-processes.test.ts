// Tensor parallelism across 2 worker processes over the grpc group (the deployment shape: one rank
// per process, torchrun variables): tensor-parallel-worker.ts, bundled here from source with tsup,
// runs 3 AdamW steps at tp=2 in f64; its losses and gathered weights must be the single process's.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel-processes.test.ts
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, protoPath } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import { build } from 'tsup';
import { beforeAll, describe, expect, it } from 'vitest';
import { batch, freshModel, referenceStep } from './tensor-parallel-fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));
// Under node_modules (ignored), so the bundle's `../proto` (parallel's .proto files) can be linked.
const bundleDir = join(here, '../../node_modules/.cache/grin-tp-worker');
const worker = join(bundleDir, 'bin/worker.js');

beforeAll(async () => {
  await build({
    entry: { worker: join(here, 'tensor-parallel-worker.ts') },
    outDir: join(bundleDir, 'bin'),
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    noExternal: [/.*/],
    splitting: false,
    dts: false,
    sourcemap: false,
    clean: true,
    silent: true,
    config: false,
    esbuildOptions(options) {
      options.conditions = ['source']; // the workspace packages from their sources, as vitest runs them
      options.banner = {
        js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      };
    },
  });
  if (!existsSync(join(bundleDir, 'proto')))
    symlinkSync(dirname(protoPath('rendezvous')), join(bundleDir, 'proto'));
}, 60_000);

function rank(rank: number, port: number, out: string): Promise<{ code: number | null; log: string }> {
  const env = {
    ...process.env,
    RANK: String(rank),
    WORLD_SIZE: '2',
    LOCAL_RANK: String(rank),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
    GRIN_RUN_TOKEN: 'tensor-parallel-test-token',
    GRIN_TIMEOUT_MS: '60000',
    GRIN_TP_OUT: out,
  };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [worker], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr.on('data', (c: Buffer) => (log += c.toString()));
    child.on('exit', (code) => resolve({ code, log }));
  });
}

describe('tensor parallelism across processes', () => {
  it('2 grpc ranks, 3 AdamW steps in f64: the single-process losses and weights', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'grin-tp-'));
    try {
      const out = join(dir, 'rank0.json');
      const port = await freePort();
      const ranks = await Promise.all([rank(0, port, out), rank(1, port, out)]);
      for (const r of ranks) expect(r.code, r.log).toBe(0);
      const got = JSON.parse(readFileSync(out, 'utf8')) as {
        pid: number;
        losses: number[];
        weights: Record<string, number[]>;
      };
      expect(got.pid).not.toBe(process.pid);
      const reference = freshModel('f64');
      const optimizer = new T.AdamW(reference.parameters(), { lr: 0.01 });
      const generator = new T.Generator(7);
      for (let step = 0; step < 3; step++) {
        const expected = await referenceStep(reference, batch(step), generator);
        const want = expected.crossEntropy + expected.auxLoss;
        expect(Math.abs(got.losses[step]! - want) / want, `step ${step}`).toBeLessThan(1e-11);
        T.clipGradNorm(reference.parameters(), 4);
        optimizer.stepOnce();
        optimizer.zeroGrad();
      }
      for (const [name, p] of reference.namedParameters()) {
        const want = p.toArray() as Float64Array;
        const scale = Math.max(...want.map(Math.abs));
        const worst = Math.max(...got.weights[name]!.map((v, i) => Math.abs(v - want[i]!)));
        expect(worst / scale, name).toBeLessThan(1e-11);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
