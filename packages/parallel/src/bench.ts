// All-reduce bus bandwidth of a process group next to a plain TCP socket ring moving the same bytes
// in the same processes: what `grin bench allreduce` runs on every rank. Bus bandwidth follows
// nccl-tests: size x 2(n-1)/n / time, the bytes each rank sends (and receives) in a ring all-reduce.
// Test: cd packages/parallel && npx vitest run src/bench.test.ts
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { ProcessGroup } from './group.js';
import type { Store } from './store.js';

export interface BandwidthRow {
  bytes: number;
  /** Best of the repeats, seconds. */
  seconds: number;
  busGBps: number;
}

/** The bytes one rank sends in a ring all-reduce of `bytes` over `ranks` ranks. */
export function ringBytes(bytes: number, ranks: number): number {
  return Math.round((bytes * 2 * (ranks - 1)) / ranks);
}

/** Times `repeats` all-reduces (sum, f32) of each size after one warm-up; the best time counts. */
export async function allReduceBandwidth(
  group: ProcessGroup,
  sizes: number[],
  repeats: number,
): Promise<BandwidthRow[]> {
  const rows: BandwidthRow[] = [];
  for (const bytes of sizes) {
    const data = new Float32Array(bytes / 4).fill(group.rank + 1);
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r <= repeats; r++) {
      await group.barrier();
      const start = process.hrtime.bigint();
      await group.allReduce(data, 'sum');
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (r > 0) best = Math.min(best, seconds);
    }
    rows.push({ bytes, seconds: best, busGBps: ringBytes(bytes, group.size) / best / 1e9 });
  }
  return rows;
}

/**
 * The baseline: each rank writes ringBytes(size) to the next rank over one plain TCP socket while
 * reading as many from the previous one (what a ring all-reduce moves, with no framing, gRPC or
 * reduction), timed like allReduceBandwidth. The sockets meet through the Store.
 */
export async function socketRingBandwidth(
  group: ProcessGroup,
  store: Store,
  sizes: number[],
  repeats: number,
): Promise<BandwidthRow[]> {
  const { rank, size } = group;
  const { server, port } = await listen();
  const incoming = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await store.set(`bench/tcp/${rank}`, String(port));
  const nextPort = Number((await store.get(`bench/tcp/${(rank + 1) % size}`)).toString());
  const next = await connect(nextPort);
  const previous = await incoming;
  const read = byteCounter(previous);
  next.setNoDelay(true);
  const rows: BandwidthRow[] = [];
  try {
    for (const bytes of sizes) {
      const moved = ringBytes(bytes, size);
      const payload = Buffer.alloc(moved, rank);
      let best = Number.POSITIVE_INFINITY;
      for (let r = 0; r <= repeats; r++) {
        await group.barrier();
        const start = process.hrtime.bigint();
        await Promise.all([write(next, payload), read(moved)]);
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        if (r > 0) best = Math.min(best, seconds);
      }
      rows.push({ bytes, seconds: best, busGBps: moved / best / 1e9 });
    }
  } finally {
    next.destroy();
    previous.destroy();
    server.close();
  }
  await group.barrier();
  return rows;
}

function listen(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    );
  });
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function write(socket: Socket, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.write(payload, (error) => (error ? reject(error) : resolve())),
  );
}

/** Counts the bytes arriving on a socket from the start, so none are lost between reads. */
function byteCounter(socket: Socket): (bytes: number) => Promise<void> {
  let received = 0;
  let waiter: { until: number; resolve: () => void } | null = null;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (waiter && received >= waiter.until) {
      const { resolve } = waiter;
      waiter = null;
      resolve();
    }
  });
  let expected = 0;
  return (bytes) => {
    expected += bytes;
    if (received >= expected) return Promise.resolve();
    return new Promise((resolve) => {
      waiter = { until: expected, resolve };
    });
  };
}
