// Point-to-point messages under every process group: a Transport sends a typed array to a rank
// under a key, and a receive posted for (src, key) gets it chunk by chunk into its target (copied,
// summed or max-ed in), checked against the descriptor (dtype and shape) and byte length it
// expects. The Mailbox does the matching for both the in-process and the socket transports.
// Test: cd packages/parallel && npx vitest run src/local-group.test.ts src/socket-transport.test.ts
import { type Combine, combineInto } from './combine.js';
import { ParallelError, type RankFailure } from './errors.js';

export type Elements = Float32Array | Float64Array | Int32Array;

export function dtypeOf(data: Elements): 'f32' | 'f64' | 'i32' {
  return data instanceof Float32Array ? 'f32' : data instanceof Float64Array ? 'f64' : 'i32';
}

export function bytesOf(data: Elements): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export interface Transport {
  readonly rank: number;
  readonly worldSize: number;
  /** Resolves once the data is handed off (the caller may then reuse it). */
  send(dst: number, key: string, descriptor: string, data: Uint8Array): Promise<void>;
  /** Resolves when target.byteLength bytes have arrived and been combined into target. */
  recv(src: number, key: string, descriptor: string, target: Elements, combine: Combine): Promise<void>;
  /** Stops every pending and later operation with this failure. */
  fail(failure: RankFailure): void;
  readonly failure: RankFailure | null;
  close(): Promise<void>;
}

/** A posted receive: where its bytes go and how they join what is there. */
export interface Receive {
  readonly descriptor: string;
  readonly target: Elements;
  readonly combine: Combine;
}

interface Posted extends Receive {
  received: number;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** What a chunk says about itself: its message's descriptor and size, and its place in it. */
export interface ChunkHeader {
  descriptor: string;
  byteLength: number;
  offset: number;
  length: number;
}

interface Arrived {
  descriptor: string;
  byteLength: number;
  offset: number;
  data: Uint8Array;
}

/** Matches arriving chunks to posted receives; chunks that come early wait in a queue. */
export class Mailbox {
  private readonly posted = new Map<string, Posted>();
  private readonly early = new Map<string, Arrived[]>();
  failure: RankFailure | null = null;

  constructor(
    private readonly rank: number,
    private readonly timeoutMs: number,
  ) {}

  post(src: number, key: string, descriptor: string, target: Elements, combine: Combine): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const id = `${src}|${key}`;
    if (this.posted.has(id))
      return Promise.reject(
        new ParallelError(`rank ${this.rank}: a receive for '${key}' from rank ${src} is already posted`),
      );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.posted.delete(id);
        reject(
          new ParallelError(
            `rank ${this.rank}: timed out after ${this.timeoutMs} ms waiting for rank ${src} ('${key}'); that rank is stuck, or the ranks called collectives in different orders`,
          ),
        );
      }, this.timeoutMs);
      const entry: Posted = { descriptor, target, combine, received: 0, resolve, reject, timer };
      this.posted.set(id, entry);
      const early = this.early.get(id) ?? [];
      this.early.delete(id);
      // Stop at a rejection: delivering on would queue the rest as early chunks again.
      for (const chunk of early) if (this.posted.get(id) === entry) this.deliver(src, key, chunk);
    });
  }

  /**
   * For a transport that reads a chunk straight into the receiver's memory: the posted receive the
   * chunk belongs to, or null when none is posted yet (then deliver() the chunk once it is in) or
   * when the chunk does not fit it (the receive is then rejected, naming both sides). Report the
   * landed bytes with landed().
   */
  claim(src: number, key: string, chunk: ChunkHeader): Receive | null {
    const id = `${src}|${key}`;
    const entry = this.posted.get(id);
    if (!entry) return null;
    const mismatch = this.mismatch(src, key, entry, chunk);
    if (mismatch) {
      this.finish(id, entry);
      entry.reject(mismatch);
      return null;
    }
    return entry;
  }

  /** bytes more of (src, key) are in place (after claim()); the receive resolves once all are. */
  landed(src: number, key: string, bytes: number): void {
    const id = `${src}|${key}`;
    const entry = this.posted.get(id);
    if (!entry) return; // timed out or failed meanwhile: that error has been reported
    entry.received += bytes;
    if (entry.received >= entry.target.byteLength) {
      this.finish(id, entry);
      entry.resolve();
    }
  }

  deliver(src: number, key: string, chunk: Arrived): void {
    const id = `${src}|${key}`;
    const entry = this.posted.get(id);
    if (!entry) {
      const queue = this.early.get(id) ?? [];
      queue.push(chunk);
      this.early.set(id, queue);
      return;
    }
    const mismatch = this.mismatch(src, key, entry, { ...chunk, length: chunk.data.byteLength });
    if (mismatch) {
      this.finish(id, entry);
      entry.reject(mismatch);
      return;
    }
    try {
      combineInto(entry.target, entry.combine, chunk.offset, chunk.data);
    } catch (error) {
      this.finish(id, entry);
      entry.reject(error as Error);
      return;
    }
    this.landed(src, key, chunk.data.byteLength);
  }

  private mismatch(src: number, key: string, entry: Posted, chunk: ChunkHeader): ParallelError | null {
    const byteLength = entry.target.byteLength;
    if (chunk.descriptor !== entry.descriptor || chunk.byteLength !== byteLength)
      return new ParallelError(
        `rank ${this.rank}: rank ${src} sent ${chunk.byteLength} bytes of ${chunk.descriptor} for '${key}', expected ${byteLength} bytes of ${entry.descriptor} (the ranks disagree on dtype, shape or size)`,
      );
    if (chunk.offset + chunk.length > byteLength)
      return new ParallelError(`rank ${this.rank}: rank ${src} sent a chunk past the end of '${key}'`);
    const width = entry.target.BYTES_PER_ELEMENT;
    if (entry.combine !== 'copy' && (chunk.offset % width !== 0 || chunk.length % width !== 0))
      return new ParallelError(
        `rank ${this.rank}: rank ${src} sent a chunk of '${key}' not aligned to ${width}-byte elements`,
      );
    return null;
  }

  private finish(id: string, entry: Posted): void {
    clearTimeout(entry.timer);
    this.posted.delete(id);
  }

  fail(failure: RankFailure): void {
    if (this.failure) return;
    this.failure = failure;
    for (const [id, entry] of this.posted) {
      this.finish(id, entry);
      entry.reject(failure);
    }
    this.early.clear();
  }

  /** Receives still waiting: their source ranks (for naming who a dead peer blocked). */
  pendingSources(): number[] {
    return [...this.posted.keys()].map((id) => Number(id.split('|')[0]));
  }
}

/** Largest chunk a message is cut into on the wire. */
export const CHUNK_BYTES = 4 * 1024 * 1024;
