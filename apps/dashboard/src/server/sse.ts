// The live metrics stream (Server-Sent Events, event 'metrics'): polls metrics.jsonl, sends bounded
// chunks, and waits for 'drain' whenever the client reads slower than the file grows, so a slow
// reader of a large file costs one chunk of memory, not the file. A read error (the file replaced by
// a directory, a timeout) ends the stream with an 'error' event instead of escaping from a timer.
// Test: cd apps/dashboard && npx vitest run src/server/hardening.test.ts
import type { Writable } from 'node:stream';
import { statOrNull } from './async-fs.js';
import { readMetricsFrom } from './metrics-tail.js';

export const POLL_MS = 300;
const HEARTBEAT_MS = 15_000;

export interface SseOptions {
  pollMs?: number;
  /** Bytes per read; also the most this stream keeps queued beyond the socket's own buffer. */
  chunkBytes?: number;
}

/** Resolves when `out` can take more, or is closed. */
function drained(out: Writable): Promise<void> {
  return new Promise((done) => {
    const finish = () => {
      out.off('drain', finish);
      out.off('close', finish);
      done();
    };
    out.once('drain', finish);
    out.once('close', finish);
  });
}

/** Streams `path` from `offset` to `out` until `out` closes; never throws. */
export async function streamMetrics(
  out: Writable,
  path: string,
  offset: number,
  what: string,
  options: SseOptions = {},
): Promise<void> {
  const pollMs = options.pollMs ?? POLL_MS;
  let closed = false;
  let wake: (() => void) | null = null;
  out.once('close', () => {
    closed = true;
    wake?.();
  });
  const sleep = (ms: number) =>
    new Promise<void>((done) => {
      const timer = setTimeout(done, ms);
      wake = () => {
        clearTimeout(timer);
        done();
      };
    });
  let position = offset;
  let lastSent = Date.now();
  out.write('retry: 1000\n\n');
  while (!closed) {
    try {
      const present = await statOrNull(path, what);
      let more = false;
      if (present) {
        const chunk = await readMetricsFrom(path, position, options.chunkBytes, what);
        position = chunk.offset;
        more = chunk.more;
        if (chunk.records.length || chunk.reset) {
          lastSent = Date.now();
          if (!out.write(`event: metrics\ndata: ${JSON.stringify(chunk)}\n\n`)) await drained(out);
        }
      }
      if (closed) break;
      if (Date.now() - lastSent > HEARTBEAT_MS && out.writableLength === 0) {
        lastSent = Date.now();
        out.write(': ping\n\n');
      }
      if (!more) await sleep(pollMs);
    } catch (error) {
      if (!closed) {
        out.write(`event: error\ndata: ${JSON.stringify({ error: (error as Error).message })}\n\n`);
        out.end();
      }
      return;
    }
  }
}
