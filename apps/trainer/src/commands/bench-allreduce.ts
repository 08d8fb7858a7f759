// `grin bench allreduce`: all-reduce bus bandwidth of the grpc process group on loopback, 1-256 MiB,
// with 2 and 4 local processes, next to a plain TCP socket ring moving the same bytes in the same
// processes (ratio grin_vs_tcp per size; goal 0.8 at 64 MiB), read as Node's 'data' events, and
// the same ring read into a reused buffer, the cheapest copy Node has (grin_vs_tcp_reused: the
// data plane reads that way too, so this is the stricter baseline); then data-parallel efficiency:
// tokens/s of a short `grin train --dp 2` on the default model over one process with the same
// total GEMM threads. Run as a rank (RANK/WORLD_SIZE set, by us or torchrun) it measures and rank 0
// prints its rows. Test: cd apps/trainer && npx vitest run src/commands/bench-allreduce.test.ts
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  allReduceBandwidth,
  type BandwidthRow,
  freePort,
  initWorld,
  socketRingBandwidth,
} from '@grin-moe/parallel';
import { launchedAsRank } from '../train/launch.js';
import type { BenchReport } from './bench.js';

const MiB = 1 << 20;

interface RankRows {
  grpc: BandwidthRow[];
  tcp: BandwidthRow[];
  tcpReused: BandwidthRow[];
}

export async function benchAllReduce(options: { json: boolean; quick: boolean }): Promise<BenchReport> {
  const sizes = (options.quick ? [1, 4] : [1, 4, 16, 64, 256]).map((m) => m * MiB);
  const repeats = options.quick ? 1 : 3;
  if (launchedAsRank()) return measureAsRank(sizes, repeats);

  // Progress goes to stderr; with --json stdout holds the one JSON object.
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const results: Record<string, unknown> = {};
  const ratios: Record<string, number> = {};
  for (const ranks of [2, 4]) {
    log(`allreduce: ${ranks} processes, ${sizes.map((s) => s / MiB).join('/')} MiB`);
    const { grpc, tcp, tcpReused } = JSON.parse(
      await runRanks(['bench', 'allreduce', '--json', ...quickFlag(options)], ranks),
    ).results as RankRows;
    results[`ranks_${ranks}`] = grpc.map((row, i) => ({
      mib: row.bytes / MiB,
      grin_bus_gbps: round(row.busGBps),
      tcp_bus_gbps: round(tcp[i]!.busGBps),
      tcp_reused_bus_gbps: round(tcpReused[i]!.busGBps),
      grin_ms: round(row.seconds * 1e3),
      tcp_ms: round(tcp[i]!.seconds * 1e3),
      tcp_reused_ms: round(tcpReused[i]!.seconds * 1e3),
    }));
    grpc.forEach((row, i) => {
      const mib = row.bytes / MiB;
      const ratio = round(row.busGBps / tcp[i]!.busGBps);
      const strict = round(row.busGBps / tcpReused[i]!.busGBps);
      ratios[`grin_vs_tcp_${ranks}ranks_${mib}mib`] = ratio;
      ratios[`grin_vs_tcp_reused_${ranks}ranks_${mib}mib`] = strict;
      log(
        `  ${mib} MiB: grin ${round(row.busGBps)} GB/s, tcp ${round(tcp[i]!.busGBps)} GB/s, tcp reused ${round(tcpReused[i]!.busGBps)} GB/s (bus), grin_vs_tcp ${ratio}, grin_vs_tcp_reused ${strict}`,
      );
    });
  }

  const steps = options.quick ? 6 : 30;
  log(`data parallel: ${steps} steps of the default model, one process vs --dp 2`);
  const single = await trainTokensPerSecond([], steps);
  log(`  one process: ${round(single)} tokens/s`);
  const dp2 = await trainTokensPerSecond(['--dp', '2'], steps);
  log(`  --dp 2: ${round(dp2)} tokens/s`);
  const threads = availableParallelism();
  results.data_parallel = {
    model: 'default (grin train)',
    steps,
    total_gemm_threads: threads,
    single_tokens_per_s: round(single),
    dp2_tokens_per_s: round(dp2),
  };
  ratios.dp2_efficiency = round(dp2 / single);
  const report = {
    bench: 'allreduce',
    device: `cpu loopback (${cpus()[0]?.model ?? 'cpu'}, ${threads} threads)`,
    results,
    ratios,
  };
  if (!options.json) for (const [name, value] of Object.entries(ratios)) log(`${name}: ${value}`);
  return report;
}

const quickFlag = (options: { quick: boolean }) => (options.quick ? ['--quick'] : []);
const round = (x: number) => Math.round(x * 1000) / 1000;

async function measureAsRank(sizes: number[], repeats: number): Promise<BenchReport> {
  const world = await initWorld();
  try {
    const grpc = await allReduceBandwidth(world.group, sizes, repeats);
    const tcp = await socketRingBandwidth(world.group, world.store, sizes, repeats, 'events');
    const tcpReused = await socketRingBandwidth(world.group, world.store, sizes, repeats, 'reused');
    return { bench: 'allreduce', device: 'cpu loopback', results: { grpc, tcp, tcpReused }, ratios: {} };
  } finally {
    await world.close();
  }
}

/** Runs `grin ARGS` as `ranks` local processes; resolves with rank 0's stdout. */
async function runRanks(args: string[], ranks: number): Promise<string> {
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const children: ChildProcess[] = [];
  const outputs = await Promise.all(
    Array.from({ length: ranks }, (_, rank) =>
      run(args, children, {
        RANK: String(rank),
        WORLD_SIZE: String(ranks),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(ranks),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        GRIN_RUN_TOKEN: token,
      }),
    ),
  ).catch((error: Error) => {
    // One rank failed: the others would wait for it until GRIN_TIMEOUT_MS.
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    throw error;
  });
  return outputs[0]!;
}

/** Median tokens/s of steps past the first few (start-up and the first evaluation left out). */
async function trainTokensPerSecond(extra: string[], steps: number): Promise<number> {
  const out = mkdtempSync(join(tmpdir(), 'grin-bench-dp-'));
  try {
    await run([
      'train',
      '--out',
      out,
      '--name',
      'run',
      '--max-steps',
      String(steps),
      '--time-budget',
      '0',
      ...extra,
    ]);
    const rates = readFileSync(join(out, 'run', 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { tokens_per_s: number }).tokens_per_s)
      .slice(Math.min(3, steps - 1))
      .sort((a, b) => a - b);
    return rates[Math.floor(rates.length / 2)]!;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function run(
  args: string[],
  children: ChildProcess[] = [],
  env: Record<string, string> = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(stdout);
      else
        reject(
          new Error(
            `bench allreduce: 'grin ${args.join(' ')}'${env.RANK ? ` (rank ${env.RANK})` : ''} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
          ),
        );
    });
  });
}
