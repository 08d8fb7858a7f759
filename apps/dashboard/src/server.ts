// The dashboard's HTTP server (node:http, no framework): the built page from dist/web and the JSON
// API over a runs directory (server/api.ts). Binds to 127.0.0.1 unless told otherwise; GET/HEAD only.
// Every request passes the Host/Origin check (and the token of a non-loopback bind, server/access.ts);
// every handler error is answered with a status, never thrown out of the server.
// `grin dashboard` starts it; tests start it on port 0.
// Test: cd apps/dashboard && npx vitest run src/server
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accessPolicy, checkAccess, isLoopback } from './server/access.js';
import { handleApi, sendJson } from './server/api.js';
import { statOrNull } from './server/async-fs.js';
import { decodeRunPath, PathRefused } from './server/safe-path.js';

export interface DashboardOptions {
  runsDir: string;
  port?: number;
  host?: string;
  /** The built page (default: this package's dist/web). */
  webDir?: string;
  /** Required when `host` is not loopback: clients send it as a Bearer token, ?token= or the cookie. */
  token?: string | null;
}

export interface DashboardServer {
  /** The address to open; with a token it carries ?token=. */
  url: string;
  /** Set for a non-loopback bind: what the caller should print. */
  warning: string | null;
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

async function serveStatic(
  rawPath: string,
  webDir: string,
  res: ServerResponse,
  head: boolean,
): Promise<void> {
  const relative = rawPath === '/' ? 'index.html' : decodeRunPath(rawPath.slice(1));
  const path = resolve(webDir, relative);
  const stat = path.startsWith(resolve(webDir)) ? await statOrNull(path, relative) : null;
  if (!stat?.isFile()) throw new PathRefused(404, `${rawPath} not found`);
  res.writeHead(200, {
    'content-type': staticTypes[extname(path)] ?? 'application/octet-stream',
    'content-length': stat.size,
  });
  if (head) {
    res.end();
    return;
  }
  const stream = createReadStream(path);
  stream.once('error', (error) => res.destroy(error));
  stream.pipe(res);
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  runsDir: string,
  webDir: string,
  policy: ReturnType<typeof accessPolicy>,
): Promise<void> {
  const raw = req.url ?? '/';
  const queryAt = raw.indexOf('?');
  const rawPath = queryAt < 0 ? raw : raw.slice(0, queryAt);
  const query = new URLSearchParams(queryAt < 0 ? '' : raw.slice(queryAt + 1));
  const refused = checkAccess(req, res, query, policy);
  if (refused) {
    res
      .writeHead(refused.status, { 'content-type': 'text/plain; charset=utf-8' })
      .end(`${refused.message}\n`);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  if (rawPath === '/api' || rawPath.startsWith('/api/')) return handleApi(req, res, runsDir, rawPath, query);
  try {
    await serveStatic(rawPath, webDir, res, req.method === 'HEAD');
  } catch (error) {
    const status = error instanceof PathRefused ? error.status : 500;
    if (res.headersSent) res.destroy();
    else res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end((error as Error).message);
  }
}

export async function startDashboard(options: DashboardOptions): Promise<DashboardServer> {
  const runsDir = resolve(options.runsDir);
  if (!existsSync(runsDir))
    throw new Error(
      `runs directory ${runsDir} does not exist; train a run first (grin train) or pass --runs DIR`,
    );
  if (!statSync(runsDir).isDirectory())
    throw new Error(
      `runs directory ${runsDir} is a file; pass --runs DIR, the folder that holds the run folders`,
    );
  const webDir = options.webDir ?? defaultWebDir;
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? null;
  if (!isLoopback(host) && !token)
    throw new Error(
      `--host ${host} would serve every run (weights included) to the network with no authentication; give a token (--token T, or GRIN_DASHBOARD_TOKEN) or bind to 127.0.0.1`,
    );
  if (token !== null && token.length < 8)
    throw new Error(`the dashboard token must be at least 8 characters, got ${token.length}`);
  const policy = accessPolicy(host, token);
  const server = createServer((req, res) => {
    handle(req, res, runsDir, webDir, policy).catch((error: unknown) => {
      sendJson(res, 500, { error: (error as Error).message });
    });
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, () => done());
  });
  // Errors after start (a socket, a stream) are answered or dropped, never fatal to the server.
  server.on('error', () => {});
  server.on('clientError', (_error, socket) => socket.destroy());
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const warning = isLoopback(host)
    ? null
    : `warning: the dashboard listens on ${host}:${port}, beyond this machine; anyone with the token can read every run in ${runsDir}, weights included`;
  return {
    url: `http://${shownHost}:${port}/${token ? `?token=${encodeURIComponent(token)}` : ''}`,
    warning,
    server,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
