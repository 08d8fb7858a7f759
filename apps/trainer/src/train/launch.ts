// `grin train --dp N --pp M --tp K`: as a launcher it starts N x M x K local worker processes of this
// same CLI with the torchrun environment (loopback Store, a fresh GRIN_RUN_TOKEN) and stops them all
// when any one fails, naming it; as a rank (RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS set, by us
// or by an external launcher such as torchrun or srun) it joins the run and trains its
// data-parallel share of its pipeline stage, TP shard, or TP shard of a stage (parallel-layout.ts
// lays the ranks out).
// Test: cd apps/trainer && npx vitest run src/train/data-parallel.test.ts src/train/pipeline-parallel.test.ts
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { initWorld, readLaunchEnv } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import type { TrainConfig } from './config.js';
import { dataParallel } from './data-parallel.js';
import { runTraining, type TrainOptions, type TrainSummary } from './loop.js';
import { layoutFlags, type ParallelLayout } from './parallel-layout.js';
import { pipelineParallel } from './pipeline-parallel.js';
import { ProgressBar } from './progress.js';
import { tensorParallelRank } from './tensor-parallel-rank.js';

/** True when a launcher placed this process in a world of more than one rank. */
export function launchedAsRank(env: NodeJS.ProcessEnv = process.env): boolean {
  const size = env.WORLD_SIZE ?? (env.RANK === undefined ? env.SLURM_NTASKS : undefined);
  return size !== undefined && Number(size) > 1;
}

/**
 * Joins the run from the environment and trains this rank's share; rank 0 alone writes. The caller
 * has checked the layout against the config (layoutProblems).
 */
export async function trainAsRank(
  config: TrainConfig,
  options: TrainOptions,
  layout: ParallelLayout,
): Promise<{ summary: TrainSummary; rank: number }> {
  const env = readLaunchEnv();
  const { dp, pp, tp } = layout;
  if (env.worldSize !== dp * pp * tp)
    throw new Error(
      tp === 1
        ? `train: --dp ${dp} --pp ${pp} needs dp x pp = ${dp * pp} ranks but the launcher started ${env.worldSize} (WORLD_SIZE/SLURM_NTASKS); pass --dp and --pp whose product is ${env.worldSize}`
        : `train: ${layoutFlags(layout)} needs dp x pp x tp = ${dp * pp * tp} ranks but the launcher started ${env.worldSize} (WORLD_SIZE/SLURM_NTASKS); pass --dp, --pp and --tp whose product is ${env.worldSize}`,
    );
  // Local ranks share the machine's cores, as torchrun's OMP_NUM_THREADS=1 intends: each rank's
  // GEMM pool gets its share, so --dp N uses the threads one process would.
  const local = Number(process.env.LOCAL_WORLD_SIZE);
  if (local > 1) T.setGemmThreads(Math.max(1, Math.floor(T.gemmThreads() / local)));
  const world = await initWorld({ env });
  const quiet = new ProgressBar(
    new Writable({ write: (_c, _e, done) => done() }) as unknown as NodeJS.WriteStream,
  );
  try {
    const summary = await runTraining(config, {
      ...options,
      parallel:
        pp > 1
          ? pipelineParallel(world.group, layout)
          : tp > 1
            ? tensorParallelRank(world.group, layout)
            : dataParallel(world.group),
      progress: env.rank === 0 ? options.progress : quiet,
    });
    await world.close();
    return { summary, rank: env.rank };
  } catch (error) {
    // Every other rank stops with this rank's number and message.
    world.group.abort((error as Error).message);
    await new Promise((r) => setTimeout(r, 200));
    // The world's servers and streams would keep this process alive after the error is reported.
    setTimeout(() => process.exit(), 2000).unref();
    throw error;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface LaunchOptions {
  /** The CLI script to run (default: this process's own). */
  script?: string;
  /** Seconds the others get to stop by themselves after one rank fails, before they are killed. */
  graceSeconds?: number;
  log?: (line: string) => void;
}

/** Starts `ranks` ranks of `grin train argv` on this machine; resolves with the exit code for the shell. */
export async function launchLocalWorkers(
  argv: string[],
  ranks: number,
  options: LaunchOptions = {},
): Promise<number> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const script = options.script ?? process.argv[1]!;
  const port = await freePort();
  const token = process.env.GRIN_RUN_TOKEN ?? randomBytes(16).toString('hex');
  const children: ChildProcess[] = [];
  let firstFailure: string | null = null;
  const exits = Array.from({ length: ranks }, (_, rank) => {
    const child = spawn(process.execPath, [...process.execArgv, script, 'train', ...argv], {
      env: {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(ranks),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(ranks),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        GRIN_RUN_TOKEN: token,
      },
      // Rank 0 speaks for the run; the others' stderr (errors only) is prefixed with their rank.
      stdio: rank === 0 ? 'inherit' : ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) log(`[rank ${rank}] ${line}`);
    });
    return new Promise<number>((resolve) => {
      child.on('exit', (code, signal) => {
        if ((code !== 0 || signal) && firstFailure === null) {
          firstFailure = `rank ${rank} (pid ${child.pid}) ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`;
          setTimeout(() => stopAll(children), (options.graceSeconds ?? 30) * 1000).unref();
        }
        resolve(code ?? 1);
      });
    });
  });
  const codes = await Promise.all(exits);
  if (firstFailure) {
    log(
      `train: ${firstFailure}; the run stopped (${codes.filter((c) => c !== 0).length} of ${ranks} ranks failed)`,
    );
    return 1;
  }
  return 0;
}

function stopAll(children: ChildProcess[]): void {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  setTimeout(() => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, 5000).unref();
}
