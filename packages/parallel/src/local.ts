// The `local` process group backend: N ranks in one process (tests, and the reference that the
// gRPC backend must match), exchanging copies of the data through in-memory mailboxes.
// Test: cd packages/parallel && npx vitest run src/local-group.test.ts

import type { Combine } from './combine.js';
import { RankFailure } from './errors.js';
import { ProcessGroup } from './group.js';
import { CHUNK_BYTES, type Elements, Mailbox, type Transport } from './transport.js';

class LocalTransport implements Transport {
  readonly mailbox: Mailbox;
  constructor(
    readonly rank: number,
    readonly worldSize: number,
    private readonly world: LocalTransport[],
    timeoutMs: number,
  ) {
    this.mailbox = new Mailbox(rank, timeoutMs);
  }
  get failure() {
    return this.mailbox.failure;
  }
  async send(dst: number, key: string, descriptor: string, data: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    const peer = this.world[dst]!;
    // Copies now, as a socket would: the sender may reuse its buffer once send resolves.
    for (let offset = 0; offset < Math.max(1, data.byteLength); offset += CHUNK_BYTES) {
      const piece = data.slice(offset, Math.min(data.byteLength, offset + CHUNK_BYTES));
      queueMicrotask(() =>
        peer.mailbox.deliver(this.rank, key, {
          descriptor,
          byteLength: data.byteLength,
          offset,
          data: piece,
        }),
      );
    }
  }
  recv(src: number, key: string, descriptor: string, target: Elements, combine: Combine): Promise<void> {
    return this.mailbox.post(src, key, descriptor, target, combine);
  }
  fail(failure: RankFailure): void {
    this.mailbox.fail(failure);
  }
  async close(): Promise<void> {}
}

/** World groups for ranks 0..size-1 of one in-process world. */
export function localWorld(size: number, options: { timeoutMs?: number } = {}): ProcessGroup[] {
  const transports: LocalTransport[] = [];
  for (let rank = 0; rank < size; rank++)
    transports.push(new LocalTransport(rank, size, transports, options.timeoutMs ?? 60_000));
  const groups = transports.map(
    (t) =>
      new ProcessGroup(t, 'local', 'world', [...Array(size).keys()], {
        onFailure: (failure) => {
          // In one process a failure reaches every rank at once, as the Store's abort key does across processes.
          for (const other of transports) other.fail(failure);
        },
      }),
  );
  return groups;
}

export { RankFailure };
