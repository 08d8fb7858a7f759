// Worker threads that run slices of a task table over the shared GEMM memory, driven synchronously:
// the calling thread posts the slices in a control block, bumps a generation word (Atomics.notify),
// runs its own slice, then Atomics.waits until every worker has counted down. Workers are created
// lazily from an inline script (works from TS sources and from a bundle alike) and unref'd, so they
// never keep the process alive. Tested by gemm.test.ts (threads 1 and 2).
// Test: cd packages/tensor && npx vitest run src/cpu/gemm
import { type GemmEngine, nodeBuiltin } from './gemm-engine.js';

// Control block at byte 0 of the memory, in i32 words; the arena starts after it.
const word = { generation: 0, pending: 1, error: 2, table: 3, slices: 8 } as const;
export const controlBytes = 1024;
const maxThreads = (controlBytes / 4 - word.slices) / 2;
// Busy-wait this many polls before sleeping: back-to-back calls then skip the futex wake-up latency.
const spinPolls = 20000;

const workerSource = `
const { workerData } = require('node:worker_threads');
const { module, memory, index, generation } = workerData;
const ctl = new Int32Array(memory.buffer, 0, ${controlBytes / 4});
let runTasks = null;
try { runTasks = new WebAssembly.Instance(module, { env: { memory } }).exports.run_tasks; } catch {}
let seen = generation;
for (;;) {
  for (let polls = 0; polls < ${spinPolls} && Atomics.load(ctl, ${word.generation}) === seen; polls++);
  Atomics.wait(ctl, ${word.generation}, seen);
  const now = Atomics.load(ctl, ${word.generation});
  if (now === seen) continue;
  seen = now;
  try {
    const start = ctl[${word.slices} + 2 * index], end = ctl[${word.slices} + 1 + 2 * index];
    if (end > start) runTasks(ctl[${word.table}], start, end);
  } catch { Atomics.store(ctl, ${word.error}, 1); }
  if (Atomics.sub(ctl, ${word.pending}, 1) === 1) Atomics.notify(ctl, ${word.pending});
}
`;

interface WorkerLike {
  unref(): void;
  terminate(): Promise<number>;
}
type WorkerClass = new (source: string, options: { eval: true; workerData: unknown }) => WorkerLike;

function defaultThreads(): number {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const fromEnv = env?.GRIN_CPU_THREADS;
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`GRIN_CPU_THREADS=${fromEnv}: must be a positive integer`);
    return Math.min(n, maxThreads);
  }
  const os = nodeBuiltin<{ availableParallelism?: () => number; cpus(): unknown[] }>('node:os');
  return Math.min(os ? (os.availableParallelism?.() ?? os.cpus().length) : 1, maxThreads);
}

let threads: number | undefined;
const workers: WorkerLike[] = [];

/** Threads gemmF32 uses (the calling thread included). */
export function gemmThreads(): number {
  threads ??= defaultThreads();
  return threads;
}

export function setGemmThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > maxThreads) {
    throw new Error(`setGemmThreads(${n}): expected an integer from 1 to ${maxThreads}`);
  }
  threads = n;
  while (workers.length > n - 1) void workers.pop()!.terminate();
}

/** Whether work can be spread: Node worker_threads and a shared memory. */
export function canUseWorkers(engine: GemmEngine): boolean {
  return engine.shared && nodeBuiltin<unknown>('node:worker_threads') !== undefined;
}

function ensureWorkers(engine: GemmEngine, count: number): void {
  const Worker = nodeBuiltin<{ Worker: WorkerClass }>('node:worker_threads')!.Worker;
  const ctl = engine.i32();
  while (workers.length < count) {
    const workerData = {
      module: engine.module,
      memory: engine.memory,
      index: workers.length + 1,
      generation: Atomics.load(ctl, word.generation),
    };
    const worker = new Worker(workerSource, { eval: true, workerData });
    worker.unref();
    workers.push(worker);
  }
}

/**
 * Runs task-table slices: slice 0 on the calling thread, slice t on worker t. Each slice is
 * [start, end) in records of the table at byte address `table`.
 */
export function runSlices(engine: GemmEngine, table: number, slices: Array<[number, number]>): void {
  if (slices.length <= 1) {
    const [start, end] = slices[0] ?? [0, 0];
    engine.exports.run_tasks(table, start, end);
    return;
  }
  ensureWorkers(engine, slices.length - 1);
  const ctl = engine.i32();
  ctl[word.table] = table;
  for (let w = 1; w <= workers.length; w++) {
    const [start, end] = slices[w] ?? [0, 0];
    ctl[word.slices + 2 * w] = start;
    ctl[word.slices + 1 + 2 * w] = end;
  }
  Atomics.store(ctl, word.error, 0);
  Atomics.store(ctl, word.pending, workers.length);
  Atomics.add(ctl, word.generation, 1);
  Atomics.notify(ctl, word.generation);
  engine.exports.run_tasks(table, slices[0]![0], slices[0]![1]);
  for (let polls = 0; polls < spinPolls && Atomics.load(ctl, word.pending) !== 0; polls++);
  for (
    let pending = Atomics.load(ctl, word.pending);
    pending !== 0;
    pending = Atomics.load(ctl, word.pending)
  ) {
    Atomics.wait(ctl, word.pending, pending);
  }
  if (Atomics.load(ctl, word.error) !== 0) {
    throw new Error('gemmF32: a worker thread failed to run its share of the product (WebAssembly trap?)');
  }
}
