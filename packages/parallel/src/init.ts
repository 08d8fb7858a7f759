// Joining a run: rank 0 hosts the rendezvous Store, every rank opens its data port (socket-transport.ts),
// publishes "host:port" under peer/<rank> (only holders of the run token can read the Store),
// reads everyone else's, connects to every rank with the token, and waits for all.
// A failure on any rank is written to the Store's abort key; every rank watches that key and
// stops with the failed rank's message. Test: cd packages/parallel && npx vitest run src/grpc-group.test.ts src/faults.test.ts

import { type LaunchEnv, readLaunchEnv } from './env.js';
import { ParallelError, RankFailure } from './errors.js';
import { ProcessGroup } from './group.js';
import { localWorld } from './local.js';
import { SocketTransport } from './socket-transport.js';
import { DEFAULT_TIMEOUT_MS, PrefixStore, type Store, StoreClient, StoreServer } from './store.js';

export type Backend = 'grpc' | 'local';
export const BACKENDS: readonly string[] = ['grpc', 'local', 'nccl'];

export interface World {
  env: LaunchEnv;
  group: ProcessGroup;
  store: Store;
  /** Leaves the run: a barrier, then the sockets, the watcher and (rank 0, last) the Store close. */
  close(): Promise<void>;
}

export interface InitOptions {
  backend?: string;
  env?: LaunchEnv;
  /** Store connection, every Store call and every receive time out after this (GRIN_TIMEOUT_MS, default 300 s). */
  timeoutMs?: number;
}

const ABORT = 'abort';

export async function initWorld(options: InitOptions = {}): Promise<World> {
  const backend = options.backend ?? 'grpc';
  if (backend === 'nccl')
    throw new ParallelError(
      "process group 'nccl' holds GPU tensors: create it with ncclGroup() from a grpc world (it needs the Store)",
    );
  if (backend !== 'grpc' && backend !== 'local')
    throw new ParallelError(
      `unknown process group backend '${backend}'; valid backends: ${BACKENDS.join(', ')}`,
    );
  const env = options.env ?? readLaunchEnv();
  const timeoutMs = options.timeoutMs ?? (Number(process.env.GRIN_TIMEOUT_MS) || DEFAULT_TIMEOUT_MS);
  if (env.worldSize === 1 || backend === 'local') {
    if (env.worldSize !== 1)
      throw new ParallelError(
        `backend 'local' runs every rank in one process; use localWorld(${env.worldSize}) in that process, or 'grpc' across processes`,
      );
    const group = localWorld(1)[0]!;
    return { env, group, store: new MemoryStore(), close: () => group.close() };
  }

  const server = env.rank === 0 ? await StoreServer.listen(env.bindAddr, env.masterPort, env.token) : null;
  const storeHost =
    env.rank === 0
      ? env.bindAddr === '0.0.0.0' || env.bindAddr === '::'
        ? '127.0.0.1'
        : env.bindAddr
      : env.masterAddr;
  const client = new StoreClient(storeHost, env.masterPort, env.token, timeoutMs);
  const transport = new SocketTransport(env.rank, env.worldSize, env.token, timeoutMs);
  const cleanup = async () => {
    client.close();
    await transport.close();
    await server?.close();
  };
  try {
    await client.connect(timeoutMs);
    const store = new PrefixStore('world', client);
    const port = await transport.listen(env.bindAddr);
    await store.set(`peer/${env.rank}`, `${env.advertiseAddr}:${port}`);
    const addresses = await Promise.all(
      Array.from({ length: env.worldSize }, async (_, r) =>
        (await store.get(`peer/${r}`, timeoutMs)).toString(),
      ),
    );
    await transport.connect(addresses, timeoutMs);
    await store.set(`connected/${env.rank}`, '1');
    await store.wait(
      Array.from({ length: env.worldSize }, (_, r) => `connected/${r}`),
      timeoutMs,
    );

    let closing = false;
    const watcher = new StoreClient(storeHost, env.masterPort, env.token, 2 ** 31 - 1);
    const watch = watcher.get(`world/${ABORT}`).then(
      (value) => {
        if (closing) return;
        const { rank, cause } = JSON.parse(value.toString()) as { rank: number; cause: string };
        transport.fail(new RankFailure(rank, cause));
      },
      (error: Error) => {
        // Rank 0 may have exited because another rank failed: its abort frame says so.
        if (!closing)
          transport.suspect(new RankFailure(0, `the Store (hosted by rank 0) is gone: ${error.message}`));
      },
    );
    void watch;
    transport.onFailure = (failure) => {
      // Best effort: if the Store itself is gone, the broken connections still stop every rank.
      store.set(ABORT, JSON.stringify({ rank: failure.failedRank, cause: failure.reason })).catch(() => {});
    };
    const group = new ProcessGroup(transport, 'grpc', 'world', [...Array(env.worldSize).keys()], {
      onClose: async () => {
        if (!transport.failure) await group.barrier().catch(() => {});
        closing = true;
        watcher.close();
        await store.set(`closed/${env.rank}`, '1').catch(() => {});
        if (server) {
          const everyone = Array.from({ length: env.worldSize }, (_, r) => `closed/${r}`);
          await store.wait(everyone, 5000).catch(() => {});
        }
        client.close();
      },
    });
    return {
      env,
      group,
      store,
      close: async () => {
        await group.close();
        await server?.close();
      },
    };
  } catch (error) {
    await cleanup().catch(() => {});
    throw error;
  }
}

/** The Store of a world of one (nothing to meet). */
class MemoryStore implements Store {
  private readonly table = new Map<string, Buffer>();
  async set(key: string, value: string | Uint8Array) {
    this.table.set(key, Buffer.from(value));
  }
  async get(key: string) {
    const value = this.table.get(key);
    if (!value) throw new ParallelError(`store get '${key}': no such key in a world of one`);
    return value;
  }
  async add(key: string, delta: number) {
    const value = Number(this.table.get(key)?.toString() ?? 0) + delta;
    this.table.set(key, Buffer.from(String(value)));
    return value;
  }
  async wait(keys: string[]) {
    const missing = keys.filter((k) => !this.table.has(k));
    if (missing.length)
      throw new ParallelError(`store wait: ${missing.join(', ')} never set in a world of one`);
  }
}
