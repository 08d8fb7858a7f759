// Test helpers: a free loopback port, an N-rank grpc world inside one process (each rank with its
// own Store client, data port and sockets, exactly as across processes), and launch
// environments. Test: used by src/*.test.ts (cd packages/parallel && npx vitest run)
import { createServer } from 'node:net';
import type { LaunchEnv } from './env.js';
import { initWorld, type World } from './init.js';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export function testEnv(
  rank: number,
  worldSize: number,
  masterPort: number,
  token = 'test-token-123',
): LaunchEnv {
  return {
    rank,
    worldSize,
    localRank: rank,
    masterAddr: '127.0.0.1',
    masterPort,
    token,
    bindAddr: '127.0.0.1',
    advertiseAddr: '127.0.0.1',
    source: 'torchrun',
  };
}

/** Every rank of a grpc world, joined concurrently in this process. */
export async function grpcWorlds(size: number, timeoutMs = 20_000): Promise<World[]> {
  const port = await freePort();
  return Promise.all(
    Array.from({ length: size }, (_, rank) =>
      initWorld({ backend: 'grpc', env: testEnv(rank, size, port), timeoutMs }),
    ),
  );
}

export async function closeAll(worlds: World[]): Promise<void> {
  await Promise.all(worlds.map((w) => w.close()));
}
