// Reads metrics.jsonl from a byte offset, at most a bounded chunk at a time: only whole lines (a line
// the trainer is still writing waits for the next read), a file that shrank (a resumed run truncates
// it) restarts from 0, and `more` says that the file holds more past this chunk. The page polls
// /api/runs/NAME/metrics?offset=N or listens to the SSE stream (sse.ts), which uses this too.
// Test: cd apps/dashboard && npx vitest run src/server/server.test.ts src/server/hardening.test.ts
import { readRegularFile } from './async-fs.js';

export type MetricRecord = Record<string, number>;

export interface MetricsChunk {
  records: MetricRecord[];
  /** Where the next read starts. */
  offset: number;
  /** True when the file was shorter than the offset asked for, so the reader must drop its points. */
  reset: boolean;
  /** True when the file holds more whole lines past `offset` than this chunk carried. */
  more: boolean;
}

/** A metrics line is short; a chunk bounds the memory one reader can make the server hold. */
export const METRICS_CHUNK_BYTES = 256 * 1024;

export async function readMetricsFrom(
  path: string,
  offset: number,
  maxBytes = METRICS_CHUNK_BYTES,
  what = 'metrics.jsonl',
): Promise<MetricsChunk> {
  const { bytes, size, start } = await readRegularFile(path, what, offset, maxBytes);
  const reset = offset > size;
  const lastNewline = bytes.lastIndexOf(0x0a);
  if (lastNewline < 0) {
    // A full chunk without a newline is one absurdly long (corrupt) line: skip it, do not stall.
    const skip = bytes.length === maxBytes ? bytes.length : 0;
    return { records: [], offset: start + skip, reset, more: start + skip < size && skip > 0 };
  }
  const records: MetricRecord[] = [];
  for (const line of bytes.subarray(0, lastNewline).toString('utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line) as MetricRecord);
    } catch {
      // A corrupt line (a crash mid-write before a resume) is skipped, not fatal.
    }
  }
  const next = start + lastNewline + 1;
  return { records, offset: next, reset, more: size - next > 0 && bytes.length === maxBytes };
}
