// Reads metrics.jsonl from a byte offset: only whole lines (a line the trainer is still writing
// waits for the next read), and a file that shrank (a resumed run truncates it) restarts from 0.
// The page polls /api/runs/NAME/metrics?offset=N or listens to the SSE stream, which uses this too.
// Test: cd apps/dashboard && npx vitest run src/server/server.test.ts
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export type MetricRecord = Record<string, number>;

export interface MetricsChunk {
  records: MetricRecord[];
  /** Where the next read starts. */
  offset: number;
  /** True when the file was shorter than the offset asked for, so the reader must drop its points. */
  reset: boolean;
}

export function readMetricsFrom(path: string, offset: number): MetricsChunk {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const reset = offset > size;
    const start = reset ? 0 : offset;
    const bytes = Buffer.alloc(size - start);
    let read = 0;
    while (read < bytes.length) {
      const n = readSync(fd, bytes, read, bytes.length - read, start + read);
      if (n === 0) break;
      read += n;
    }
    const lastNewline = bytes.subarray(0, read).lastIndexOf(0x0a);
    if (lastNewline < 0) return { records: [], offset: start, reset };
    const text = bytes.subarray(0, lastNewline).toString('utf8');
    const records: MetricRecord[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        records.push(JSON.parse(line) as MetricRecord);
      } catch {
        // A corrupt line (a crash mid-write before a resume) is skipped, not fatal.
      }
    }
    return { records, offset: start + lastNewline + 1, reset };
  } finally {
    closeSync(fd);
  }
}
