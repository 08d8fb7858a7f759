// The dashboard server against a hostile runs folder and hostile clients: a FIFO named
// metrics.jsonl answers 500 without blocking other requests, a metrics file replaced by a directory
// mid-stream ends that stream with an error event while the server lives on, a slow SSE reader of a
// large file holds one chunk, not the file, Host/Origin must name the bound address, and a
// non-loopback bind needs a token and comes with a warning. Run: npx vitest run src/server/hardening
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DashboardServer, startDashboard } from '../server.js';
import { ServeError, withTimeout } from './async-fs.js';
import { streamMetrics } from './sse.js';

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function get(
  url: string,
  path: string,
  headers: Record<string, string> = {},
  stopWhen?: RegExp,
): Promise<Answer> {
  const { hostname, port } = new URL(url);
  return new Promise((done, fail) => {
    const req = request({ hostname, port, path, headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
        if (stopWhen?.test(body)) req.destroy();
      });
      const finish = () => done({ status: res.statusCode!, body, headers: res.headers });
      res.on('end', finish);
      res.on('close', finish);
    });
    req.on('error', (error) => (stopWhen ? undefined : fail(error)));
    req.end();
  });
}

const line = (step: number) =>
  `${JSON.stringify({ step, loss: 5 - step / 1e5, lr: 0.001, tokens: step * 1024 })}\n`;
const root = mkdtempSync(join(tmpdir(), 'grin-dashboard-hostile-'));
const runs = join(root, 'runs');
const web = join(root, 'web');
let server: DashboardServer;

beforeAll(async () => {
  mkdirSync(join(runs, 'fifo'), { recursive: true });
  execFileSync('mkfifo', [join(runs, 'fifo', 'metrics.jsonl')]);
  mkdirSync(join(runs, 'ok'));
  writeFileSync(join(runs, 'ok', 'metrics.jsonl'), line(1) + line(2));
  mkdirSync(join(runs, 'big'));
  writeFileSync(
    join(runs, 'big', 'metrics.jsonl'),
    Array.from({ length: 6000 }, (_, i) => line(i + 1)).join(''),
  );
  mkdirSync(web);
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>t</title>');
  server = await startDashboard({ runsDir: runs, webDir: web });
});
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

describe('a hostile runs folder', () => {
  it('a FIFO named metrics.jsonl is answered 500 at once and blocks nothing', async () => {
    const started = Date.now();
    // More FIFO requests than libuv has threads: a blocking open would starve every other request.
    const fifo = await Promise.all(
      Array.from({ length: 6 }, () => get(server.url, '/api/runs/fifo/metrics?offset=0')),
    );
    for (const answer of fifo) {
      expect(answer.status).toBe(500);
      expect(JSON.parse(answer.body).error).toBe(
        'fifo/metrics.jsonl is not a regular file (a directory or a FIFO?)',
      );
    }
    expect((await get(server.url, '/api/runs/fifo/events')).status).toBe(500);
    const list = await get(server.url, '/api/runs');
    expect(list.status).toBe(200);
    expect(JSON.parse(list.body).runs.map((r: { name: string }) => r.name)).toEqual(['big', 'fifo', 'ok']);
    expect((await get(server.url, '/api/runs/ok/metrics')).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('a metrics file replaced by a directory mid-stream ends that stream, not the server', async () => {
    mkdirSync(join(runs, 'swap'));
    writeFileSync(join(runs, 'swap', 'metrics.jsonl'), line(1));
    const stream = get(server.url, '/api/runs/swap/events?offset=0');
    await new Promise((r) => setTimeout(r, 400));
    rmSync(join(runs, 'swap', 'metrics.jsonl'));
    mkdirSync(join(runs, 'swap', 'metrics.jsonl'));
    const answer = await stream;
    expect(answer.body).toContain('event: metrics');
    expect(answer.body).toMatch(/event: error\ndata: \{"error":"swap\/metrics.jsonl is not a regular file/);
    expect((await get(server.url, '/api/runs')).status).toBe(200);
  });

  it('a reading SSE client gets every line of a large file, in bounded chunks', async () => {
    const answer = await get(server.url, '/api/runs/big/events?offset=0', {}, /"step":6000[,}]/);
    const events = answer.body.split('\n').filter((l) => l.startsWith('data: '));
    const steps = events.flatMap((l) => JSON.parse(l.slice(6)).records.map((r: { step: number }) => r.step));
    expect(steps).toEqual(Array.from({ length: 6000 }, (_, i) => i + 1));
    expect(events.length).toBeGreaterThan(1); // the file is larger than one chunk
  });
});

describe('back-pressure', () => {
  it('a reader that never reads holds one chunk, not the file', async () => {
    const path = join(runs, 'big', 'metrics.jsonl');
    const slow = new PassThrough({ highWaterMark: 1024 }); // nobody reads the other end
    const done = streamMetrics(slow, path, 0, 'big/metrics.jsonl', { chunkBytes: 16 * 1024, pollMs: 5 });
    await new Promise((r) => setTimeout(r, 300));
    // The file is about 400 KB; what is queued stays one 16 KB chunk (plus its JSON framing).
    expect(slow.writableLength).toBeGreaterThan(0);
    expect(slow.writableLength).toBeLessThan(40 * 1024);
    slow.destroy();
    await done; // the closed stream ends the loop
  });

  it('withTimeout answers 504 for a read that never returns', async () => {
    const never = new Promise<never>(() => {});
    await expect(withTimeout(never, 50, 'x/metrics.jsonl')).rejects.toEqual(
      new ServeError(504, 'x/metrics.jsonl: no answer from the file system within 50 ms'),
    );
  });
});

describe('who may connect', () => {
  it('refuses a Host or Origin that is not the bound address (DNS rebinding)', async () => {
    const { port } = new URL(server.url);
    expect((await get(server.url, '/api/runs', { host: `evil.example:${port}` })).status).toBe(421);
    expect((await get(server.url, '/', { host: `attacker.test` })).status).toBe(421);
    expect((await get(server.url, '/api/runs', { origin: 'http://evil.example' })).status).toBe(403);
    expect((await get(server.url, '/api/runs', { host: `localhost:${port}` })).status).toBe(200);
    expect((await get(server.url, '/api/runs', { origin: `http://127.0.0.1:${port}` })).status).toBe(200);
  });

  it('a non-loopback bind needs a token', async () => {
    await expect(startDashboard({ runsDir: runs, webDir: web, host: '0.0.0.0' })).rejects.toThrow(
      /--host 0\.0\.0\.0 would serve every run .* give a token/,
    );
    const open = await startDashboard({ runsDir: runs, webDir: web, host: '0.0.0.0', token: 's3cret-token' });
    try {
      expect(open.warning).toMatch(/^warning: the dashboard listens on 0\.0\.0\.0:\d+, beyond this machine/);
      expect(open.url).toMatch(/\?token=s3cret-token$/);
      const base = open.url.replace('0.0.0.0', '127.0.0.1');
      expect((await get(base, '/api/runs')).status).toBe(401);
      expect((await get(base, '/api/runs', { authorization: 'Bearer wrong-token!' })).status).toBe(401);
      expect((await get(base, '/api/runs', { authorization: 'Bearer s3cret-token' })).status).toBe(200);
      const first = await get(base, '/?token=s3cret-token');
      expect(first.status).toBe(200);
      const cookie = String(first.headers['set-cookie']).split(';')[0]!;
      expect(cookie).toBe('grin_dashboard_token=s3cret-token');
      expect((await get(base, '/api/runs', { cookie })).status).toBe(200);
    } finally {
      await open.close();
    }
  });

  it('says that --runs names a file, not that it does not exist', async () => {
    writeFileSync(join(root, 'runs.txt'), 'x');
    await expect(startDashboard({ runsDir: join(root, 'runs.txt'), webDir: web })).rejects.toThrow(
      /runs\.txt is a file; pass --runs DIR/,
    );
  });
});
