// metrics.jsonl on resume: the records after the resumed checkpoint are dropped (they belong to the
// interrupted tail). A torn last line (a kill during an append) is trimmed with a note; any other
// line that does not parse is an error naming the file and the line. Rewritten atomically.
// Test: cd apps/trainer && npx vitest run src/train/metrics-file.test.ts
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JsonFileError, writeFileAtomic } from './json-file.js';

/** Keeps the records with step <= `step`; returns how many were kept. */
export function truncateMetrics(runDir: string, step: number, note: (line: string) => void): number {
  const path = join(runDir, 'metrics.jsonl');
  if (!existsSync(path)) return 0;
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  // The part after the last newline is empty when the file ends whole.
  const tail = lines.pop()!;
  const kept: string[] = [];
  const parse = (line: string, number: number, last: boolean): boolean => {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      if (last) return false;
      throw new JsonFileError(
        `${path}:${number}: not valid JSON (${(error as Error).message}); a damaged line before the last is not a torn append: fix or delete that line`,
      );
    }
    const at = (record as { step?: unknown } | null)?.step;
    if (typeof at !== 'number' || !Number.isInteger(at))
      throw new JsonFileError(
        `${path}:${number}: expected an object with an integer "step", got ${line.slice(0, 60)}`,
      );
    if (at <= step) kept.push(line);
    return true;
  };
  lines.forEach((line, i) => {
    if (line.trim() && !parse(line, i + 1, i === lines.length - 1 && !tail.trim()))
      note(`${path}:${i + 1}: trimmed a torn last line (${JSON.stringify(line.slice(0, 40))})`);
  });
  if (tail.trim() && !parse(tail, lines.length + 1, true))
    note(`${path}:${lines.length + 1}: trimmed a torn last line (${JSON.stringify(tail.slice(0, 40))})`);
  writeFileAtomic(path, kept.map((line) => `${line}\n`).join(''));
  return kept.length;
}
