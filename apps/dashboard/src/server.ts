// The dashboard's HTTP server (node:http, no framework): the built page from dist/web and the JSON
// API over a runs directory (server/api.ts). Binds to 127.0.0.1 unless told otherwise; GET/HEAD only.
// `grin dashboard` starts it; tests start it on port 0.
// Test: cd apps/dashboard && npx vitest run src/server
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { handleApi } from './server/api.js';
import { decodeRunPath, PathRefused } from './server/safe-path.js';

export interface DashboardOptions {
  runsDir: string;
  port?: number;
  host?: string;
  /** The built page (default: this package's dist/web). */
  webDir?: string;
}

export interface DashboardServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** This package's root, from src/ (tests, sources) or dist/ (the bundle) alike. */
export const packageRoot = fileURLToPath(new URL('..', import.meta.url));
export const defaultWebDir = join(packageRoot, 'dist', 'web');

const staticTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

/** Builds the page with Vite when dist/web is missing (a source checkout without `pnpm build`). */
export function ensureWebBuilt(webDir = defaultWebDir): string {
  if (existsSync(join(webDir, 'index.html'))) return webDir;
  const result = spawnSync('npx', ['--no-install', 'vite', 'build'], { cwd: packageRoot, stdio: 'inherit' });
  if (result.status !== 0 || !existsSync(join(webDir, 'index.html'))) {
    throw new Error(
      `${webDir}/index.html is missing and 'vite build' in ${packageRoot} failed; run 'pnpm --filter @grin-moe/dashboard build'`,
    );
  }
  return webDir;
}

function serveStatic(
  rawPath: string,
  webDir: string,
  res: import('node:http').ServerResponse,
  head: boolean,
): void {
  const relative = rawPath === '/' ? 'index.html' : decodeRunPath(rawPath.slice(1));
  const path = resolve(webDir, relative);
  if (!path.startsWith(resolve(webDir)) || !existsSync(path) || !statSync(path).isFile()) {
    throw new PathRefused(404, `${rawPath} not found`);
  }
  res.writeHead(200, {
    'content-type': staticTypes[extname(path)] ?? 'application/octet-stream',
    'content-length': statSync(path).size,
  });
  if (head) res.end();
  else createReadStream(path).pipe(res);
}

export async function startDashboard(options: DashboardOptions): Promise<DashboardServer> {
  const runsDir = resolve(options.runsDir);
  if (!existsSync(runsDir) || !statSync(runsDir).isDirectory()) {
    throw new Error(
      `runs directory ${runsDir} does not exist; train a run first (grin train) or pass --runs DIR`,
    );
  }
  const webDir = options.webDir ?? defaultWebDir;
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    const raw = req.url ?? '/';
    const queryAt = raw.indexOf('?');
    const rawPath = queryAt < 0 ? raw : raw.slice(0, queryAt);
    const query = new URLSearchParams(queryAt < 0 ? '' : raw.slice(queryAt + 1));
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (rawPath === '/api' || rawPath.startsWith('/api/'))
      return handleApi(req, res, runsDir, rawPath, query);
    try {
      serveStatic(rawPath, webDir, res, req.method === 'HEAD');
    } catch (error) {
      const status = error instanceof PathRefused ? error.status : 500;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end((error as Error).message);
    }
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, () => done());
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    server,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
