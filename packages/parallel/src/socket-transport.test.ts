// The socket data plane of the grpc group: strangers at a data port (wrong token, no token, not our
// protocol, a rank already connected) are refused and the group carries on; a rank with another
// token is refused by its peers' data ports; a message of another size names the peer and both
// sizes whether its receive was posted before the bytes came or after; a message of several
// chunks lands whole either way. A lost connection is only a suspicion for SUSPICION_MS: a failure a
// peer names meanwhile (its abort frame) takes its place, and otherwise it stands. Test: cd packages/parallel && npx vitest run src/socket-transport
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { RankFailure } from './errors.js';
import { ProcessGroup } from './group.js';
import { SocketTransport, SUSPICION_MS } from './socket-transport.js';
import { closeAll, grpcWorlds } from './testing.js';
import { CHUNK_BYTES } from './transport.js';
import { decodeHeader, encodeHello, FrameKind } from './wire.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends `hello` to a data port and returns the refusal it gets before the port hangs up. */
async function knock(address: string, hello: Buffer): Promise<string> {
  const [host, port] = address.split(':');
  const socket = connect({ host: host!, port: Number(port) });
  socket.write(hello);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  // A port that accepts keeps the connection: give up waiting for the hang-up then.
  await Promise.race([new Promise((resolve) => socket.on('close', resolve)), sleep(3000)]);
  socket.destroy();
  const reply = Buffer.concat(chunks);
  const decoded = decodeHeader(reply, 0, reply.length);
  expect(decoded?.header.kind).toBe(FrameKind.refuse);
  return decoded!.header.key;
}

describe('socket data plane', () => {
  it('refuses a connection without the run token, and the group carries on', async () => {
    const worlds = await grpcWorlds(2);
    try {
      const address = (await worlds[0]!.store.get('peer/1')).toString();
      expect(await knock(address, encodeHello(0, 'wrong-token-456'))).toMatch(
        /^rank 1 refused 127\.0\.0\.1:\d+: wrong run token \(GRIN_RUN_TOKEN must match\)$/,
      );
      expect(await knock(address, encodeHello(0, ''))).toMatch(
        /: no run token \(GRIN_RUN_TOKEN must match\)$/,
      );
      expect(await knock(address, Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toMatch(
        /: not a grin data-plane hello$/,
      );
      // The right token does not let a second connection take over a rank's place.
      expect(await knock(address, encodeHello(0, 'test-token-123'))).toMatch(
        /: rank 0 is connected already$/,
      );
      const data = [Float32Array.of(1, 2), Float32Array.of(10, 20)];
      await Promise.all(worlds.map((w, r) => w.group.allReduce(data[r]!)));
      expect([...data[0]!]).toEqual([11, 22]);
    } finally {
      await closeAll(worlds);
    }
  });

  it("a rank with another token is refused by its peer's data port", async () => {
    const transports = [
      new SocketTransport(0, 2, 'token-of-the-run', 5000),
      new SocketTransport(1, 2, 'token-of-another', 5000),
    ];
    try {
      const ports = await Promise.all(transports.map((t) => t.listen('127.0.0.1')));
      const addresses = ports.map((port) => `127.0.0.1:${port}`);
      const results = await Promise.allSettled(transports.map((t) => t.connect(addresses, 5000)));
      for (const [rank, result] of results.entries())
        expect(String((result as PromiseRejectedResult).reason)).toMatch(
          new RegExp(`rank ${rank}: rank ${1 - rank} refused 127\\.0\\.0\\.1:\\d+: wrong run token`),
        );
    } finally {
      await Promise.all(transports.map((t) => t.close()));
    }
  });

  it.each([
    ['posted before the bytes came', 0],
    ['posted after the bytes came', 300],
  ])('a message of another size names the peer and both sizes (receive %s)', async (_, delayMs) => {
    const worlds = await grpcWorlds(2);
    try {
      const expected = new Float32Array(CHUNK_BYTES / 4 + 5);
      const sent = new Float32Array(CHUNK_BYTES / 4 + 3);
      const receive = sleep(delayMs).then(() => worlds[0]!.group.recv(expected, 1));
      const results = await Promise.allSettled([receive, worlds[1]!.group.send(sent, 0)]);
      expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(
        new RegExp(
          `rank 0: rank 1 sent ${sent.byteLength} bytes of f32 for 'world/p2p/1->0#0', expected ${expected.byteLength} bytes of f32`,
        ),
      );
    } finally {
      await closeAll(worlds);
    }
  });

  it.each([
    ['posted before the bytes came', 0],
    ['posted after the bytes came', 300],
  ])('a message of several chunks lands whole (receive %s)', async (_, delayMs) => {
    const worlds = await grpcWorlds(2);
    try {
      const sent = Float64Array.from({ length: (CHUNK_BYTES / 8) * 2 + 77 }, (_, i) => Math.sin(i));
      const received = new Float64Array(sent.length);
      await Promise.all([
        sleep(delayMs).then(() => worlds[0]!.group.recv(received, 1)),
        worlds[1]!.group.send(sent, 0),
      ]);
      expect(Buffer.from(received.buffer).equals(Buffer.from(sent.buffer))).toBe(true);
    } finally {
      await closeAll(worlds);
    }
  });

  it('transports made by hand form a working group', async () => {
    const transports = [0, 1, 2].map((rank) => new SocketTransport(rank, 3, 'token-of-the-run', 5000));
    try {
      const ports = await Promise.all(transports.map((t) => t.listen('127.0.0.1')));
      await Promise.all(
        transports.map((t) =>
          t.connect(
            ports.map((p) => `127.0.0.1:${p}`),
            5000,
          ),
        ),
      );
      const groups = transports.map((t) => new ProcessGroup(t, 'grpc', 'world', [0, 1, 2]));
      const data = groups.map((_, r) => Float64Array.of(r, 2 * r, -r - 1));
      await Promise.all(groups.map((g, r) => g.allReduce(data[r]!, 'max')));
      for (const d of data) expect([...d]).toEqual([2, 4, -1]);
    } finally {
      await Promise.all(transports.map((t) => t.close()));
    }
  });

  it('a suspicion yields to the root cause a peer names within SUSPICION_MS, and stands otherwise', async () => {
    const transports = [0, 1, 2].map((rank) => new SocketTransport(rank, 3, 'token-of-the-run', 5000));
    try {
      const ports = await Promise.all(transports.map((t) => t.listen('127.0.0.1')));
      const addresses = ports.map((p) => `127.0.0.1:${p}`);
      await Promise.all(transports.map((t) => t.connect(addresses, 5000)));
      const [t0, t1, t2] = transports as [SocketTransport, SocketTransport, SocketTransport];
      const waiting = t2.recv(0, 'k', 'f32[1]', new Float32Array(1), 'copy');
      // Rank 2 sees rank 0's connection go; rank 0 fails because of rank 1 and says so.
      t2.suspect(new RankFailure(0, 'connection lost (test)'));
      expect(t2.failure).toBeNull();
      // At once: the frame then has the whole window to arrive, even on a loaded machine.
      t0.fail(new RankFailure(1, 'the root cause'));
      await expect(waiting).rejects.toThrow(/^rank 1 failed: the root cause$/);
      expect(t2.failure?.message).toBe('rank 1 failed: the root cause');
      // Rank 1 heard the abort too; a transport nobody tells keeps its own suspicion.
      expect(t1.failure?.message).toBe('rank 1 failed: the root cause');
      const alone = new SocketTransport(0, 2, 'token-of-the-run', 5000);
      const started = Date.now();
      const pending = alone.recv(1, 'k', 'f32[1]', new Float32Array(1), 'copy');
      alone.suspect(new RankFailure(1, 'connection lost (test)'));
      await expect(pending).rejects.toThrow(/^rank 1 failed: connection lost \(test\)$/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(SUSPICION_MS - 5);
      await alone.close();
    } finally {
      await Promise.all(transports.map((t) => t.close()));
    }
  });
});
