// The JSON API over a runs directory. Every path goes through safe-path.ts; nothing outside the
// runs directory is ever read. Routes (GET only):
//   /api/runs                          list of runs with their last metrics line, which files exist
//                                      and their state (runState: training, finished or stopped)
//   /api/runs/NAME                     config.json, checkpoints, file flags, state
//   /api/runs/NAME/metrics?offset=N    metrics.jsonl from byte N (see metrics-tail.ts)
//   /api/runs/NAME/events?offset=N     the same as Server-Sent Events ('metrics'), while the run trains
//   /api/runs/NAME/compare             NAME-compare/compare.json (or NAME/compare.json)
//   /api/runs/NAME/files/PATH          any file of the run, raw (JSON, safetensors)
// Every read is asynchronous with a timeout (async-fs.ts); any error is answered (404/5xx), never thrown.
// Test: cd apps/dashboard && npx vitest run src/server
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { exists, FS_TIMEOUT_MS, readRegularFile, ServeError, statOrNull, withTimeout } from './async-fs.js';
import { readMetricsFrom } from './metrics-tail.js';
import { checkRunName, decodeRunPath, PathRefused, resolveInRuns } from './safe-path.js';
import { streamMetrics } from './sse.js';

/** Files a view needs, relative to the run directory (see README.md for their shapes). */
export const RUN_FILES = {
  metrics: 'metrics.jsonl',
  expertLoad: 'routing/expert-load.json',
  genre: 'routing/genre.json',
  tokenRouting: 'routing/token-routing.json',
  categorySimilarity: 'eval/category-similarity.json',
} as const;

export { POLL_MS } from './sse.js';

/** The run list reads only the end of each metrics file. */
const LAST_RECORD_BYTES = 64 * 1024;
/** The most a JSON run file (config.json, compare.json) may be when parsed by the server. */
const JSON_FILE_BYTES = 16 * 1024 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

const contentTypes: Record<string, string> = {
  json: 'application/json; charset=utf-8',
  jsonl: 'application/x-ndjson; charset=utf-8',
  safetensors: 'application/octet-stream',
  txt: 'text/plain; charset=utf-8',
};

export function contentType(path: string): string {
  return contentTypes[path.slice(path.lastIndexOf('.') + 1)] ?? 'application/octet-stream';
}

async function lastRecord(runDir: string, name: string): Promise<Record<string, number> | null> {
  const path = join(runDir, RUN_FILES.metrics);
  try {
    const stat = await statOrNull(path, `${name}/${RUN_FILES.metrics}`);
    if (!stat?.isFile()) return null;
    const from = Math.max(0, stat.size - LAST_RECORD_BYTES);
    const { bytes } = await readRegularFile(path, `${name}/${RUN_FILES.metrics}`, from, LAST_RECORD_BYTES);
    const lines = bytes.toString('utf8').trim().split('\n').filter(Boolean);
    return lines.length ? (JSON.parse(lines.at(-1)!) as Record<string, number>) : null;
  } catch {
    return null; // a torn last line or an unreadable file: the list still shows the run
  }
}

export type RunState = 'training' | 'finished' | 'stopped';

/** Whether a process of this machine is alive (EPERM: it is, under another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * 'training' while `grin train` holds the run's train.lock (a live pid on this host, or any lock
 * from another host, which cannot be checked from here); otherwise 'finished' once the metrics
 * reached the configured optim.steps, else 'stopped' (interrupted, a time budget, a non-finite loss).
 */
async function runState(
  runDir: string,
  name: string,
  last: Record<string, number> | null,
): Promise<RunState> {
  const lock = join(runDir, 'train.lock');
  if (await exists(lock)) {
    const owner = await readJson(lock, `${name}/train.lock`).catch(() => null);
    const { pid, host } = (owner ?? {}) as { pid?: unknown; host?: unknown };
    if (typeof pid === 'number' && (host !== hostname() || processAlive(pid))) return 'training';
  }
  const config = (await readJson(join(runDir, 'config.json'), `${name}/config.json`).catch(() => null)) as {
    optim?: { steps?: unknown };
  } | null;
  const steps = config?.optim?.steps;
  return typeof steps === 'number' && last !== null && last.step! >= steps ? 'finished' : 'stopped';
}

async function fileFlags(runsDir: string, name: string): Promise<Record<string, boolean>> {
  const runDir = join(runsDir, name);
  const flags: Record<string, boolean> = {};
  for (const [key, rel] of Object.entries(RUN_FILES)) flags[key] = await exists(join(runDir, rel));
  flags.compare = comparePath(runsDir, name) !== null;
  return flags;
}

function comparePath(runsDir: string, name: string): string | null {
  for (const rel of [`${name}-compare/compare.json`, `${name}/compare.json`]) {
    try {
      return resolveInRuns(runsDir, rel);
    } catch {}
  }
  return null;
}

export async function listRuns(runsDir: string) {
  const entries = await withTimeout(
    readdir(runsDir, { withFileTypes: true }),
    FS_TIMEOUT_MS,
    'the runs directory',
  ).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const runs = [];
  for (const entry of entries) {
    if (!entry.isDirectory() && !entry.isSymbolicLink()) continue;
    let dir: string;
    try {
      dir = resolveInRuns(runsDir, entry.name);
    } catch {
      continue; // a symlink out of the runs directory is not a run
    }
    const stat = await statOrNull(dir, entry.name).catch(() => null);
    if (!stat?.isDirectory()) continue;
    const last = await lastRecord(dir, entry.name);
    runs.push({
      name: entry.name,
      last,
      state: await runState(dir, entry.name, last),
      files: await fileFlags(runsDir, entry.name),
      modified: stat.mtimeMs,
    });
  }
  return runs.sort((a, b) => a.name.localeCompare(b.name));
}

async function checkpoints(runDir: string) {
  const dir = join(runDir, 'checkpoints');
  const names = await withTimeout(readdir(dir), FS_TIMEOUT_MS, 'checkpoints').catch(() => [] as string[]);
  const found = [];
  for (const name of names) {
    const step = Number(/^step-(\d+)$/.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isInteger(step) || !(await exists(join(dir, name, 'model.safetensors')))) continue;
    found.push({
      step,
      path: `checkpoints/${name}`,
      hasTokenizer: await exists(join(dir, name, 'tokenizer.json')),
    });
  }
  return found.sort((a, b) => a.step - b.step);
}

async function readJson(path: string, what: string): Promise<unknown> {
  const { bytes, size } = await readRegularFile(path, what, 0, JSON_FILE_BYTES);
  if (size > JSON_FILE_BYTES)
    throw new ServeError(500, `${what} is ${size} bytes; over the ${JSON_FILE_BYTES} limit`);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new ServeError(500, `${what} is not valid JSON (${(error as Error).message})`);
  }
}

async function runDetail(runsDir: string, name: string) {
  const runDir = resolveInRuns(runsDir, name);
  let config: unknown = null;
  if (await exists(join(runDir, 'config.json')))
    config = await readJson(join(runDir, 'config.json'), `${name}/config.json`).catch(() => null);
  const last = await lastRecord(runDir, name);
  return {
    name,
    config,
    last,
    state: await runState(runDir, name, last),
    files: await fileFlags(runsDir, name),
    checkpoints: await checkpoints(runDir),
  };
}

/** Streams a regular file; a failure after the headers went out cuts the connection. */
async function sendFile(res: ServerResponse, path: string, what: string, type: string): Promise<void> {
  const stat = await statOrNull(path, what);
  if (!stat) throw new PathRefused(404, `${what} not found`);
  if (!stat.isFile()) throw new PathRefused(404, `${what} is not a file`);
  const stream = createReadStream(path, { flags: 'r' });
  stream.once('error', (error) => {
    if (res.headersSent) res.destroy(error);
    else sendJson(res, 500, { error: `${what}: ${(error as NodeJS.ErrnoException).code ?? error.message}` });
  });
  stream.once('open', () => {
    res.writeHead(200, { 'content-type': type, 'content-length': stat.size, 'cache-control': 'no-store' });
    stream.pipe(res);
  });
  res.once('close', () => stream.destroy());
}

/** Answers /api/... requests; `rawPath` is the URL path as sent (still percent-encoded). Never rejects. */
export async function handleApi(
  _req: IncomingMessage,
  res: ServerResponse,
  runsDir: string,
  rawPath: string,
  query: URLSearchParams,
): Promise<void> {
  try {
    const parts = rawPath.split('/').slice(2); // ['', 'api', ...]
    if (parts[0] !== 'runs') throw new PathRefused(404, `no API route ${rawPath}`);
    if (parts.length === 1 || (parts.length === 2 && parts[1] === '')) {
      sendJson(res, 200, { runs: await listRuns(runsDir) });
      return;
    }
    const name = checkRunName(parts[1]!);
    const action = parts[2];
    if (action === undefined) {
      sendJson(res, 200, await runDetail(runsDir, name));
      return;
    }
    if (action === 'metrics' || action === 'events') {
      const what = `${name}/${RUN_FILES.metrics}`;
      const path = resolveInRuns(runsDir, what);
      const offset = Math.max(0, Math.floor(Number(query.get('offset') ?? 0)) || 0);
      if (action === 'events') {
        const stat = await statOrNull(path, what);
        if (stat && !stat.isFile())
          throw new ServeError(500, `${what} is not a regular file (a directory or a FIFO?)`);
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        });
        await streamMetrics(res, path, offset, what);
        return;
      }
      sendJson(res, 200, await readMetricsFrom(path, offset, undefined, what));
      return;
    }
    if (action === 'compare') {
      const path = comparePath(runsDir, name);
      if (!path)
        throw new PathRefused(404, `${name}: no compare.json (looked in ${name}-compare/ and ${name}/)`);
      await sendFile(res, path, `${name} compare.json`, contentTypes.json!);
      return;
    }
    if (action === 'files' && parts.length > 3) {
      const relative = decodeRunPath(parts.slice(3).join('/'));
      const path = resolveInRuns(runsDir, `${name}/${relative}`);
      await sendFile(res, path, `${name}/${relative}`, contentType(path));
      return;
    }
    throw new PathRefused(404, `no API route ${rawPath}`);
  } catch (error) {
    const status = error instanceof PathRefused || error instanceof ServeError ? error.status : 500;
    sendJson(res, status, { error: (error as Error).message });
  }
}
