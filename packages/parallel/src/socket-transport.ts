// The `grpc` group's data plane: tensor bytes on plain TCP sockets beside the gRPC control plane
// (the Store hands out the socket addresses and carries aborts). gRPC cost three copies per message
// (our frame encoding, grpc-js's length prefix, the HTTP/2 chunk concatenation); here a send
// writes a small header and the tensor's own memory, and a receive reads straight into the
// destination (or folds each read into it, for sum and max). Each rank connects to every other
// rank and reads from that connection; the peer writes on it once the hello carried the run token.
// Both ends live as long as the group, so a peer that dies is seen at once (its connection
// closes without a goodbye) and named.
// Who to name: when rank 1 dies, rank 0 may see it, fail and exit before rank 2 has read rank 1's
// last bytes, and rank 2 would then see rank 0's connection go first. So a failing rank writes its
// failure (an abort frame) on every connection it opened, whose outgoing side carried nothing but
// the hello and so takes the frame at once, before the process can exit; and a lost connection
// (or a vanished Store) is only a suspicion for SUSPICION_MS, during which a peer's abort frame or
// the Store's abort key, which name the root cause, take its place.
// Test: cd packages/parallel && npx vitest run src/socket-transport.test.ts src/faults.test.ts
import { timingSafeEqual } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Combine } from './combine.js';
import { ParallelError, RankFailure } from './errors.js';
import { type Folder, simdFolder } from './folder.js';
import { Folding, InPlace, type Landing, NoPayload, Staged } from './landing.js';
import { KEEPALIVE_TIME_MS } from './proto.js';
import { FrameReader } from './reader.js';
import { bytesOf, CHUNK_BYTES, type Elements, Mailbox, type Receive, type Transport } from './transport.js';
import { decodeHeader, decodeHello, encodeHeader, encodeHello, type FrameHeader, FrameKind } from './wire.js';

/** Per connection: sums and maxes pass through this much reused memory, small enough to stay in cache. */
const FOLD_BYTES = 256 * 1024;
/** How long a lost connection waits for a peer to name the root cause before it names its own peer. */
export const SUSPICION_MS = 250;
/** Longest cause an abort frame carries: 4 UTF-8 bytes a character stay within MAX_HEADER_BYTES. */
const MAX_CAUSE_CHARS = 2000;

interface Handshake {
  resolve: () => void;
  reject: (error: Error) => void;
}

export class SocketTransport implements Transport {
  private readonly mailbox: Mailbox;
  private readonly server: Server;
  /** Sockets this rank writes to, by peer: the peer connected and presented the run token. */
  private readonly writers = new Map<number, Socket>();
  /** Sockets this rank connected to each peer and reads from (their outgoing side takes aborts). */
  private readonly readers = new Map<number, Socket>();
  /** Every socket, for close(): writers, the connections this rank reads from, strangers. */
  private readonly sockets = new Set<Socket>();
  private readonly handshakes = new Map<number, Handshake>();
  private readonly joined = new Map<number, () => void>();
  /** Peers that said goodbye: their connections closing is not a failure. */
  private readonly departed = new Set<number>();
  /** Sends waiting for the kernel to take their last bytes: a failure stops them waiting. */
  private readonly pendingSends = new Set<(failure: RankFailure) => void>();
  /** A lost connection's failure, waiting SUSPICION_MS for a better-informed one. */
  private suspicion: { failure: RankFailure; timer: NodeJS.Timeout } | null = null;
  /** Resolves with the failure once there is one (a send that hit a broken socket waits for it). */
  private readonly failed: Promise<RankFailure>;
  private settle: (failure: RankFailure) => void = () => {};
  private closing = false;
  port = 0;
  onFailure: (failure: RankFailure) => void = () => {};

  constructor(
    readonly rank: number,
    readonly worldSize: number,
    private readonly token: string,
    private readonly timeoutMs: number,
  ) {
    this.mailbox = new Mailbox(rank, timeoutMs);
    this.failed = new Promise((resolve) => {
      this.settle = resolve;
    });
    this.server = createServer((socket) => this.accept(socket));
  }

  get failure(): RankFailure | null {
    return this.mailbox.failure;
  }

  async listen(host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (error) =>
        reject(new ParallelError(`rank ${this.rank}: data port: cannot listen on ${host}: ${error.message}`)),
      );
      this.server.listen(0, host, resolve);
    });
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  // ---- the writing side: a peer connects, presents the token, and is written to ------------------

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    // A writer's errors reach the send that hit them; a dead peer is named by its reader socket.
    socket.on('error', () => {});
    socket.setNoDelay(true);
    const from = `${socket.remoteAddress}:${socket.remotePort}`;
    const timer = setTimeout(() => socket.destroy(), this.timeoutMs);
    socket.on('close', () => {
      clearTimeout(timer);
      this.sockets.delete(socket);
    });
    let received = Buffer.alloc(0);
    const onHello = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const hello = decodeHello(received);
      if (!hello) return;
      clearTimeout(timer);
      socket.off('data', onHello);
      const refusal = 'error' in hello ? hello.error : this.refusal(hello.rank, hello.token);
      if (refusal !== null || 'error' in hello) {
        // Reading on lets the close be seen.
        socket.on('data', () => {});
        socket.end(control(FrameKind.refuse, `rank ${this.rank} refused ${from}: ${refusal}`));
        return;
      }
      socket.setKeepAlive(true, KEEPALIVE_TIME_MS);
      this.writers.set(hello.rank, socket);
      this.watchForAbort(hello.rank, socket, received.subarray(hello.size));
      socket.write(control(FrameKind.accept));
      this.joined.get(hello.rank)?.();
    };
    socket.on('data', onHello);
  }

  /** After the hello, the only frame a peer sends this way is its abort: take it as the failure. */
  private watchForAbort(peer: number, socket: Socket, first: Buffer): void {
    let pending = first;
    const take = (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (;;) {
        let decoded: ReturnType<typeof decodeHeader>;
        try {
          decoded = decodeHeader(pending, 0, pending.length);
          if (decoded && (decoded.header.kind !== FrameKind.abort || decoded.header.length !== 0))
            throw new Error(`a frame of kind ${decoded.header.kind} where only an abort may come`);
        } catch {
          // A writer's errors reach the sends that hit them.
          socket.destroy();
          return;
        }
        if (!decoded) return;
        pending = pending.subarray(decoded.size);
        this.aborted(peer, decoded.header.key);
      }
    };
    socket.on('data', take);
    take(Buffer.alloc(0));
  }

  private aborted(peer: number, text: string): void {
    if (this.closing) return;
    let failure: RankFailure;
    try {
      const { rank, cause } = JSON.parse(text) as { rank: unknown; cause: unknown };
      if (!Number.isInteger(rank) || typeof cause !== 'string') throw new Error('not {rank, cause}');
      failure = new RankFailure(rank as number, cause);
    } catch (error) {
      failure = new RankFailure(peer, `sent an unreadable abort (${(error as Error).message})`);
    }
    this.fail(failure);
  }

  private refusal(rank: number, token: Buffer): string | null {
    const expected = Buffer.from(this.token);
    if (token.length === 0) return 'no run token (GRIN_RUN_TOKEN must match)';
    if (token.length !== expected.length || !timingSafeEqual(token, expected))
      return 'wrong run token (GRIN_RUN_TOKEN must match)';
    if (rank >= this.worldSize || rank === this.rank)
      return `rank ${rank} is not another rank of 0..${this.worldSize - 1}`;
    if (this.writers.has(rank)) return `rank ${rank} is connected already`;
    return null;
  }

  // ---- the reading side: this rank connects to every peer -----------------------------------------

  /** Connects to every other rank (addresses[r] = "host:port") and waits for every rank to connect here. */
  async connect(addresses: string[], timeoutMs: number): Promise<void> {
    const peers = addresses.map((_, r) => r).filter((r) => r !== this.rank);
    const joined = peers.map((peer) =>
      this.writers.has(peer)
        ? Promise.resolve()
        : withTimeout(
            new Promise<void>((resolve) => this.joined.set(peer, resolve)),
            timeoutMs,
            `rank ${this.rank}: rank ${peer} did not connect to this rank's data port within ${timeoutMs} ms`,
          ),
    );
    await Promise.all([...peers.map((peer) => this.open(peer, addresses[peer]!, timeoutMs)), ...joined]);
  }

  private open(peer: number, address: string, timeoutMs: number): Promise<void> {
    const split = address.lastIndexOf(':');
    const host = address.slice(0, split).replace(/^\[(.*)\]$/, '$1');
    const port = Number(address.slice(split + 1));
    const folder = simdFolder(FOLD_BYTES);
    const reader = new FrameReader((header) => this.route(peer, header, folder));
    let accepted = false;
    let why = 'connection closed';
    const socket = createConnection({
      host,
      port,
      onread: {
        buffer: () => reader.next(),
        callback: (n: number) => {
          try {
            reader.read(n);
          } catch (error) {
            why = `bad data: ${(error as Error).message}`;
            socket.destroy();
          }
          return true;
        },
      },
    });
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.once('connect', () => socket.write(encodeHello(this.rank, this.token)));
    socket.on('error', (error) => {
      why = error.message;
    });
    const opened = new Promise<void>((resolve, reject) => {
      this.handshakes.set(peer, {
        resolve: () => {
          accepted = true;
          socket.setKeepAlive(true, KEEPALIVE_TIME_MS);
          this.readers.set(peer, socket);
          resolve();
        },
        reject,
      });
      socket.on('close', () => {
        this.sockets.delete(socket);
        if (accepted) this.lost(peer, why);
        else reject(new ParallelError(`rank ${this.rank}: cannot reach rank ${peer} at ${address}: ${why}`));
      });
    });
    return withTimeout(
      opened,
      timeoutMs,
      `rank ${this.rank}: cannot reach rank ${peer} at ${address} within ${timeoutMs} ms`,
    ).catch((error: Error) => {
      socket.destroy();
      throw error;
    });
  }

  /** Where the payload of a frame from peer goes. */
  private route(peer: number, header: FrameHeader, folder: Folder): Landing {
    const { kind, key } = header;
    if (kind === FrameKind.accept) return new NoPayload(() => this.handshakes.get(peer)?.resolve());
    if (kind === FrameKind.refuse)
      return new NoPayload(() =>
        this.handshakes.get(peer)?.reject(new ParallelError(`rank ${this.rank}: ${key}`)),
      );
    if (kind === FrameKind.goodbye) return new NoPayload(() => this.departed.add(peer));
    const receive = this.mailbox.claim(peer, key, header);
    if (receive) return this.land(peer, header, receive, 0, folder);
    return new Staged(header.length, header.offset, {
      claim: () => this.mailbox.claim(peer, key, header),
      land: (claimed, from) => this.land(peer, header, claimed, from, folder),
      landed: (bytes) => this.mailbox.landed(peer, key, bytes),
      queue: (data) => this.mailbox.deliver(peer, key, { ...header, data }),
    });
  }

  /** Bytes [from, length) of a data frame whose receive is posted: straight into place, or folded. */
  private land(peer: number, header: FrameHeader, receive: Receive, from: number, folder: Folder): Landing {
    const offset = header.offset + from;
    const length = header.length - from;
    const landed = () => this.mailbox.landed(peer, header.key, length);
    if (length === 0) return new NoPayload(landed);
    if (receive.combine === 'copy') return new InPlace(bytesOf(receive.target), offset, length, landed);
    return new Folding(receive.target, receive.combine, offset, folder, landed);
  }

  // ---- messages -----------------------------------------------------------------------------------

  async send(dst: number, key: string, descriptor: string, data: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    const socket = this.writers.get(dst);
    if (!socket || this.departed.has(dst))
      throw new ParallelError(
        `rank ${this.rank}: no connection to rank ${dst} for '${key}'${this.departed.has(dst) ? ' (it closed its connections)' : ''}`,
      );
    const total = data.byteLength;
    const payload = Buffer.from(data.buffer, data.byteOffset, total);
    // Headers and views of the caller's memory, nothing concatenated; corked, they go out as one writev.
    const pieces: Buffer[] = [];
    for (let offset = 0; offset < Math.max(1, total); offset += CHUNK_BYTES) {
      const length = Math.min(CHUNK_BYTES, total - offset);
      pieces.push(encodeHeader({ kind: FrameKind.data, key, descriptor, byteLength: total, offset, length }));
      if (length > 0) pieces.push(payload.subarray(offset, offset + length));
    }
    const last = pieces.pop()!;
    try {
      // The caller may reuse data once the kernel holds every byte: wait for the last write.
      await new Promise<void>((resolve, reject) => {
        const abandon = (failure: RankFailure) => reject(failure);
        this.pendingSends.add(abandon);
        socket.cork();
        for (const piece of pieces) socket.write(piece);
        socket.write(last, (error) => {
          this.pendingSends.delete(abandon);
          if (error) reject(error);
          else resolve();
        });
        socket.uncork();
      });
    } catch (error) {
      if (error instanceof RankFailure) throw error;
      this.lost(dst, (error as Error).message);
      if (this.failure || this.suspicion) throw await this.failed;
      throw new ParallelError(
        `rank ${this.rank}: sending '${key}' to rank ${dst} failed: ${(error as Error).message}`,
      );
    }
  }

  recv(src: number, key: string, descriptor: string, target: Elements, combine: Combine): Promise<void> {
    return this.mailbox.post(src, key, descriptor, target, combine);
  }

  // ---- failure and close --------------------------------------------------------------------------

  private lost(peer: number, why: string): void {
    if (this.closing || this.departed.has(peer)) return;
    this.suspect(new RankFailure(peer, `connection lost (${why})`));
  }

  /**
   * A failure seen second-hand (a connection that went, the Store gone): it stands after
   * SUSPICION_MS unless a peer or the Store names the root cause first. The first suspicion wins.
   */
  suspect(failure: RankFailure): void {
    if (this.mailbox.failure || this.suspicion) return;
    const timer = setTimeout(() => this.fail(failure), SUSPICION_MS);
    this.suspicion = { failure, timer };
  }

  fail(failure: RankFailure): void {
    if (this.mailbox.failure) return;
    if (this.suspicion) clearTimeout(this.suspicion.timer);
    this.mailbox.fail(failure);
    for (const abandon of this.pendingSends) abandon(failure);
    this.pendingSends.clear();
    this.tellPeers(failure);
    this.settle(failure);
    this.onFailure(failure);
  }

  /** An abort frame on each connection this rank opened: written now, it goes out even if the process exits next. */
  private tellPeers(failure: RankFailure): void {
    const text = JSON.stringify({
      rank: failure.failedRank,
      cause: failure.reason.slice(0, MAX_CAUSE_CHARS),
    });
    const frame = control(FrameKind.abort, text);
    for (const socket of this.readers.values()) if (socket.writable) socket.write(frame);
  }

  async close(): Promise<void> {
    // A send waiting on a suspicion gets it now.
    if (this.suspicion && !this.failure) this.fail(this.suspicion.failure);
    this.closing = true;
    // The goodbye goes first on each connection, so the peer takes the close that follows for one.
    await Promise.all(
      [...this.writers.values()].map((socket) =>
        withTimeout(
          new Promise<void>((resolve) => socket.end(control(FrameKind.goodbye), () => resolve())),
          1000,
          '',
        ).catch(() => {}),
      ),
    );
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function control(kind: FrameKind, text = ''): Buffer {
  return encodeHeader({ kind, key: text, descriptor: '', byteLength: 0, offset: 0, length: 0 });
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ParallelError(message)), ms);
    // A process that fails elsewhere should not stay up for this deadline.
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
