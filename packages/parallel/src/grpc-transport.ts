// The `grpc` backend's transport: each rank serves proto/collective.proto's Peer and keeps one
// Exchange stream open to every other rank for the life of the group, so a rank that dies is seen
// by all at once (its streams break) and named. Messages go out in frames of CHUNK_BYTES with
// write backpressure; HTTP/2 windows are raised on client and server (proto.ts).
// Test: cd packages/parallel && npx vitest run src/grpc-group.test.ts src/faults.test.ts
import * as grpc from '@grpc/grpc-js';
import { ParallelError, RankFailure } from './errors.js';
import { decodeAck, decodeFrame, encodeAck, encodeFrame, type Frame } from './frame.js';
import {
  bind,
  channelOptions,
  createServer,
  presentedToken,
  raiseSessionWindows,
  tokenMetadata,
} from './proto.js';
import { CHUNK_BYTES, type ChunkSink, Mailbox, type Transport } from './transport.js';

const peerService: grpc.ServiceDefinition = {
  Exchange: {
    path: '/grin.parallel.Peer/Exchange',
    requestStream: true,
    responseStream: true,
    requestSerialize: encodeFrame,
    requestDeserialize: decodeFrame,
    responseSerialize: encodeAck,
    responseDeserialize: decodeAck,
  },
};
const PeerClient = grpc.makeGenericClientConstructor(peerService, 'Peer');
/** The key of the first frame on each stream: it names the sender before any data. */
const HELLO = '';

type Outgoing = grpc.ClientDuplexStream<Frame, { error: string }>;

export class GrpcTransport implements Transport {
  private readonly mailbox: Mailbox;
  private readonly server = createServer();
  private readonly clients: grpc.Client[] = [];
  private readonly streams = new Map<number, Outgoing>();
  private readonly incoming = new Set<grpc.ServerDuplexStream<Frame, { error: string }>>();
  private closing = false;
  port = 0;
  onFailure: (failure: RankFailure) => void = () => {};

  constructor(
    readonly rank: number,
    readonly worldSize: number,
    private readonly token: string,
    timeoutMs: number,
  ) {
    this.mailbox = new Mailbox(rank, timeoutMs);
  }

  get failure(): RankFailure | null {
    return this.mailbox.failure;
  }

  async listen(host: string): Promise<number> {
    this.server.addService(peerService, {
      Exchange: (call: grpc.ServerDuplexStream<Frame, { error: string }>) => this.accept(call),
    });
    try {
      this.port = await bind(this.server, host, 0);
    } catch (error) {
      throw new ParallelError(`rank ${this.rank}: peer server: ${(error as Error).message}`);
    }
    raiseSessionWindows(this.server);
    return this.port;
  }

  private accept(call: grpc.ServerDuplexStream<Frame, { error: string }>): void {
    const presented = presentedToken(call.metadata);
    if (presented !== this.token) {
      call.emit('error', {
        code: grpc.status.UNAUTHENTICATED,
        details: `rank ${this.rank} refused a peer from ${call.getPeer()}: ${presented ? 'wrong' : 'no'} run token (GRIN_RUN_TOKEN must match)`,
      });
      return;
    }
    this.incoming.add(call);
    let src = -1;
    let ended = false;
    call.on('data', (frame: Frame) => {
      if (frame.key === HELLO) {
        src = frame.src;
        return;
      }
      this.mailbox.deliver(frame.src, frame.key, { ...frame, descriptor: frame.dtype });
    });
    call.on('end', () => {
      ended = true;
      this.incoming.delete(call);
      call.end();
    });
    const lost = (why: string) => {
      this.incoming.delete(call);
      if (!this.closing && !ended && src >= 0) this.fail(new RankFailure(src, `connection lost (${why})`));
    };
    call.on('error', (error: Error) => lost(error.message));
    call.on('cancelled', () => lost('its process exited or the stream was cancelled'));
    call.on('close', () => {
      if (!ended) lost('stream closed');
    });
  }

  /** Opens the outgoing stream to every other rank (addresses[r] = "host:port"). */
  async connect(addresses: string[], timeoutMs: number): Promise<void> {
    await Promise.all(
      addresses.map(async (address, peer) => {
        if (peer === this.rank) return;
        const client = new PeerClient(address, grpc.credentials.createInsecure(), channelOptions);
        this.clients.push(client);
        await new Promise<void>((resolve, reject) =>
          client.waitForReady(Date.now() + timeoutMs, (error) =>
            error
              ? reject(
                  new ParallelError(
                    `rank ${this.rank}: cannot reach rank ${peer} at ${address} within ${timeoutMs} ms`,
                  ),
                )
              : resolve(),
          ),
        );
        const stream = (client as unknown as { Exchange(m: grpc.Metadata): Outgoing }).Exchange(
          tokenMetadata(this.token),
        );
        stream.on('data', () => {});
        stream.on('error', (error: grpc.ServiceError) => {
          if (this.closing && error.code === grpc.status.CANCELLED) return;
          if (error.code === grpc.status.UNAUTHENTICATED)
            this.fail(new RankFailure(this.rank, `refused by rank ${peer}: ${error.details}`));
          else if (!this.closing)
            this.fail(new RankFailure(peer, `connection lost (${error.details || error.message})`));
        });
        stream.write({
          src: this.rank,
          key: HELLO,
          dtype: '',
          byteLength: 0,
          offset: 0,
          data: new Uint8Array(0),
        });
        this.streams.set(peer, stream);
      }),
    );
  }

  async send(dst: number, key: string, descriptor: string, data: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    const stream = this.streams.get(dst);
    if (!stream) throw new ParallelError(`rank ${this.rank}: no stream to rank ${dst}`);
    const total = data.byteLength;
    for (let offset = 0; offset < Math.max(1, total); offset += CHUNK_BYTES) {
      const chunk = data.subarray(offset, Math.min(total, offset + CHUNK_BYTES));
      const flushed = stream.write({
        src: this.rank,
        key,
        dtype: descriptor,
        byteLength: total,
        offset,
        data: chunk,
      });
      if (!flushed) await this.drained(stream, dst);
    }
  }

  private drained(stream: Outgoing, dst: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = setInterval(() => {
        if (this.failure) {
          clearInterval(check);
          stream.off('drain', done);
          reject(this.failure);
        }
      }, 200);
      const done = () => {
        clearInterval(check);
        resolve();
      };
      stream.once('drain', done);
      void dst;
    });
  }

  recv(src: number, key: string, descriptor: string, byteLength: number, onChunk: ChunkSink): Promise<void> {
    return this.mailbox.post(src, key, descriptor, byteLength, onChunk);
  }

  fail(failure: RankFailure): void {
    if (this.mailbox.failure) return;
    this.mailbox.fail(failure);
    this.onFailure(failure);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const stream of this.streams.values()) stream.end();
    // Let the peers see our clean end before the connections go.
    await new Promise((r) => setTimeout(r, 50));
    for (const client of this.clients) client.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
