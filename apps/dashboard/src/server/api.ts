// The JSON API over a runs directory. Every path goes through safe-path.ts; nothing outside the
// runs directory is ever read. Routes (GET only):
//   /api/runs                          list of runs with their last metrics line and which files exist
//   /api/runs/NAME                     config.json, checkpoints, file flags
//   /api/runs/NAME/metrics?offset=N    metrics.jsonl from byte N (see metrics-tail.ts)
//   /api/runs/NAME/events?offset=N     the same as Server-Sent Events ('metrics'), while the run trains
//   /api/runs/NAME/compare             NAME-compare/compare.json (or NAME/compare.json)
//   /api/runs/NAME/files/PATH          any file of the run, raw (JSON, safetensors)
// Test: cd apps/dashboard && npx vitest run src/server
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { readMetricsFrom } from './metrics-tail.js';
import { checkRunName, decodeRunPath, PathRefused, resolveInRuns } from './safe-path.js';

/** Files a view needs, relative to the run directory (see README.md for their shapes). */
export const RUN_FILES = {
  metrics: 'metrics.jsonl',
  expertLoad: 'routing/expert-load.json',
  genre: 'routing/genre.json',
  tokenRouting: 'routing/token-routing.json',
  categorySimilarity: 'eval/category-similarity.json',
} as const;

export const POLL_MS = 300;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
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

function lastRecord(runDir: string): Record<string, number> | null {
  const path = join(runDir, RUN_FILES.metrics);
  if (!existsSync(path)) return null;
  const lines = readFileSync(path, 'utf8').trim().split('\n').filter(Boolean);
  try {
    return lines.length ? (JSON.parse(lines.at(-1)!) as Record<string, number>) : null;
  } catch {
    return null;
  }
}

function fileFlags(runsDir: string, name: string): Record<string, boolean> {
  const runDir = join(runsDir, name);
  const flags: Record<string, boolean> = {};
  for (const [key, rel] of Object.entries(RUN_FILES)) flags[key] = existsSync(join(runDir, rel));
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

export function listRuns(runsDir: string) {
  if (!existsSync(runsDir)) return [];
  return readdirSync(runsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() || entry.isSymbolicLink())
    .flatMap((entry) => {
      try {
        const dir = resolveInRuns(runsDir, entry.name);
        if (!statSync(dir).isDirectory()) return [];
        return [
          {
            name: entry.name,
            last: lastRecord(dir),
            files: fileFlags(runsDir, entry.name),
            modified: statSync(dir).mtimeMs,
          },
        ];
      } catch {
        return []; // a symlink out of the runs directory is not a run
      }
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

function checkpoints(runDir: string) {
  const dir = join(runDir, 'checkpoints');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => ({ name, step: Number(/^step-(\d+)$/.exec(name)?.[1] ?? Number.NaN) }))
    .filter((c) => Number.isInteger(c.step) && existsSync(join(dir, c.name, 'model.safetensors')))
    .sort((a, b) => a.step - b.step)
    .map((c) => ({
      step: c.step,
      path: `checkpoints/${c.name}`,
      hasTokenizer: existsSync(join(dir, c.name, 'tokenizer.json')),
    }));
}

function runDetail(runsDir: string, name: string) {
  const runDir = resolveInRuns(runsDir, name);
  const configPath = join(runDir, 'config.json');
  let config: unknown = null;
  if (existsSync(configPath)) {
    try {
      config = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch {}
  }
  return { name, config, files: fileFlags(runsDir, name), checkpoints: checkpoints(runDir) };
}

function streamEvents(req: IncomingMessage, res: ServerResponse, path: string, offset: number): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  res.write('retry: 1000\n\n');
  let position = offset;
  const tick = () => {
    if (!existsSync(path)) return;
    const chunk = readMetricsFrom(path, position);
    if (chunk.records.length || chunk.reset) res.write(`event: metrics\ndata: ${JSON.stringify(chunk)}\n\n`);
    position = chunk.offset;
  };
  tick();
  const timer = setInterval(tick, POLL_MS);
  const heartbeat = setInterval(() => res.write(': ping\n\n'), 15_000);
  req.on('close', () => {
    clearInterval(timer);
    clearInterval(heartbeat);
  });
}

/** Answers /api/... requests; `rawPath` is the URL path as sent (still percent-encoded). */
export function handleApi(
  req: IncomingMessage,
  res: ServerResponse,
  runsDir: string,
  rawPath: string,
  query: URLSearchParams,
): void {
  try {
    const parts = rawPath.split('/').slice(2); // ['', 'api', ...]
    if (parts[0] !== 'runs') throw new PathRefused(404, `no API route ${rawPath}`);
    if (parts.length === 1 || (parts.length === 2 && parts[1] === '')) {
      sendJson(res, 200, { runs: listRuns(runsDir) });
      return;
    }
    const name = checkRunName(parts[1]!);
    const action = parts[2];
    if (action === undefined) {
      sendJson(res, 200, runDetail(runsDir, name));
      return;
    }
    if (action === 'metrics' || action === 'events') {
      const path = resolveInRuns(runsDir, `${name}/${RUN_FILES.metrics}`);
      const offset = Math.max(0, Math.floor(Number(query.get('offset') ?? 0)) || 0);
      if (action === 'events') {
        streamEvents(req, res, path, offset);
        return;
      }
      sendJson(res, 200, readMetricsFrom(path, offset));
      return;
    }
    if (action === 'compare') {
      const path = comparePath(runsDir, name);
      if (!path)
        throw new PathRefused(404, `${name}: no compare.json (looked in ${name}-compare/ and ${name}/)`);
      res.writeHead(200, { 'content-type': contentTypes.json!, 'cache-control': 'no-store' });
      createReadStream(path).pipe(res);
      return;
    }
    if (action === 'files' && parts.length > 3) {
      const relative = decodeRunPath(parts.slice(3).join('/'));
      const path = resolveInRuns(runsDir, `${name}/${relative}`);
      if (!statSync(path).isFile()) throw new PathRefused(404, `${name}/${relative} is not a file`);
      res.writeHead(200, {
        'content-type': contentType(path),
        'content-length': statSync(path).size,
        'cache-control': 'no-store',
      });
      createReadStream(path).pipe(res);
      return;
    }
    throw new PathRefused(404, `no API route ${rawPath}`);
  } catch (error) {
    if (error instanceof PathRefused) {
      sendJson(res, error.status, { error: error.message });
      return;
    }
    sendJson(res, 500, { error: (error as Error).message });
    return;
  }
}
