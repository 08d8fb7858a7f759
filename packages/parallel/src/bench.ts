// All-reduce bus bandwidth of a process group next to a plain TCP socket ring moving the same bytes
// in the same processes (read as Node's 'data' events, or into a reused buffer): what
// `grin bench allreduce` runs on every rank. Bus bandwidth follows
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
 * How the baseline reads: 'events' takes Node's 'data' events (a fresh Buffer per read, what most
 * socket code does); 'reused' reads into one reused buffer (net.connect's onread), the cheapest
 * copy Node offers and the one the grpc group's data plane uses.
 */
export type SocketReading = 'events' | 'reused';

/**
 * The baseline: each rank writes ringBytes(size) to the next rank over one plain TCP socket while
 * reading as many from the previous one (what a ring all-reduce moves, with no framing or
 * reduction), timed like allReduceBandwidth. The sockets meet through the Store.
 */
export async function socketRingBandwidth(
  group: ProcessGroup,
  store: Store,
  sizes: number[],
  repeats: number,
  reading: SocketReading = 'events',
): Promise<BandwidthRow[]> {
  const { rank, size } = group;
  const { server, port } = await listen();
  const incoming = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await store.set(`bench/tcp-${reading}/${rank}`, String(port));
  const counter = byteCounter();
  // The reading end is the one that connects: onread is an option of net.connect only.
  const previousPort = Number(
    (await store.get(`bench/tcp-${reading}/${(rank - 1 + size) % size}`)).toString(),
  );
  const previous = await connect(previousPort, reading, counter.add);
  const next = await incoming;
  const read = counter.until;
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

function connect(port: number, reading: SocketReading, add: (bytes: number) => void): Promise<Socket> {
  const buffer = Buffer.allocUnsafe(1 << 20);
  return new Promise((resolve, reject) => {
    const socket = createConnection(
      {
        host: '127.0.0.1',
        port,
        ...(reading === 'reused'
          ? {
              onread: {
                buffer,
                callback: (n: number) => {
                  add(n);
                  return true;
                },
              },
            }
          : {}),
      },
      () => resolve(socket),
    );
    if (reading === 'events') socket.on('data', (chunk: Buffer) => add(chunk.length));
    socket.once('error', reject);
  });
}

function write(socket: Socket, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.write(payload, (error) => (error ? reject(error) : resolve())),
  );
}

/** Counts the bytes arriving on a socket from the start, so none are lost between reads. */
function byteCounter(): { add: (bytes: number) => void; until: (bytes: number) => Promise<void> } {
  let received = 0;
  let expected = 0;
  let waiter: { until: number; resolve: () => void } | null = null;
  return {
    add: (bytes) => {
      received += bytes;
      if (waiter && received >= waiter.until) {
        const { resolve } = waiter;
        waiter = null;
        resolve();
      }
    },
    until: (bytes) => {
      expected += bytes;
      if (received >= expected) return Promise.resolve();
      return new Promise((resolve) => {
        waiter = { until: expected, resolve };
      });
    },
  };
}
