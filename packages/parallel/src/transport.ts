// Point-to-point messages under every process group: a Transport sends a typed array to a rank
// under a key, and a receive posted for (src, key) gets it chunk by chunk, checked against the
// descriptor (dtype and shape) and byte length it expects. The Mailbox does the matching for both
// the in-process and the gRPC transports. Test: cd packages/parallel && npx vitest run src/local-group.test.ts
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
  /** Resolves when byteLength bytes have arrived; each chunk is passed to onChunk as it lands. */
  recv(src: number, key: string, descriptor: string, byteLength: number, onChunk: ChunkSink): Promise<void>;
  /** Stops every pending and later operation with this failure. */
  fail(failure: RankFailure): void;
  readonly failure: RankFailure | null;
  close(): Promise<void>;
}

export type ChunkSink = (offset: number, chunk: Uint8Array) => void;

interface Posted {
  descriptor: string;
  byteLength: number;
  received: number;
  onChunk: ChunkSink;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
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

  post(src: number, key: string, descriptor: string, byteLength: number, onChunk: ChunkSink): Promise<void> {
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
      const entry: Posted = { descriptor, byteLength, received: 0, onChunk, resolve, reject, timer };
      this.posted.set(id, entry);
      for (const chunk of this.early.get(id) ?? []) this.deliver(src, key, chunk);
      this.early.delete(id);
    });
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
    if (chunk.descriptor !== entry.descriptor || chunk.byteLength !== entry.byteLength) {
      this.finish(id, entry);
      entry.reject(
        new ParallelError(
          `rank ${this.rank}: rank ${src} sent ${chunk.byteLength} bytes of ${chunk.descriptor} for '${key}', expected ${entry.byteLength} bytes of ${entry.descriptor} (the ranks disagree on dtype, shape or size)`,
        ),
      );
      return;
    }
    if (chunk.offset + chunk.data.byteLength > entry.byteLength) {
      this.finish(id, entry);
      entry.reject(new ParallelError(`rank ${this.rank}: rank ${src} sent a chunk past the end of '${key}'`));
      return;
    }
    try {
      entry.onChunk(chunk.offset, chunk.data);
    } catch (error) {
      this.finish(id, entry);
      entry.reject(error as Error);
      return;
    }
    entry.received += chunk.data.byteLength;
    if (entry.received >= entry.byteLength) {
      this.finish(id, entry);
      entry.resolve();
    }
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
