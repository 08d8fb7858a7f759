// The dashboard server over a temp runs directory: path traversal is refused (plain, percent-
// encoded, double-encoded, absolute, symlinks out), the JSON API lists and reads runs, and the
// metrics tail / SSE stream deliver lines appended while a run trains.
// Run: cd apps/dashboard && npx vitest run src/server/server
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DashboardServer, packageRoot, startDashboard } from '../server.js';
import { readMetricsFrom } from './metrics-tail.js';

/** A raw GET: fetch() would normalise '..' away before it reached the server. */
function get(url: string, rawPath: string): Promise<{ status: number; body: string; type: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((done, fail) => {
    const req = request({ hostname, port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => done({ status: res.statusCode!, body, type: String(res.headers['content-type']) }));
    });
    req.on('error', fail);
    req.end();
  });
}

const root = mkdtempSync(join(tmpdir(), 'grin-dashboard-server-'));
const runs = join(root, 'runs');
const web = join(root, 'web');
let server: DashboardServer;

beforeAll(async () => {
  cpSync(join(packageRoot, 'fixtures', 'runs'), runs, { recursive: true });
  writeFileSync(join(root, 'secret.txt'), 'TOP-SECRET');
  symlinkSync(join(root, 'secret.txt'), join(runs, 'tiny', 'leak.json'));
  symlinkSync(root, join(runs, 'escape'));
  symlinkSync(join(runs, 'tiny', 'config.json'), join(runs, 'tiny', 'alias.json'));
  mkdirSync(web);
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>t</title>');
  server = await startDashboard({ runsDir: runs, webDir: web });
});
afterAll(() => server.close());

describe('path traversal', () => {
  const refused = [
    '/api/runs/tiny/files/../../secret.txt',
    '/api/runs/tiny/files/..%2f..%2fsecret.txt',
    '/api/runs/tiny/files/%2e%2e%2f%2e%2e%2fsecret.txt',
    '/api/runs/tiny/files/%2E%2E/%2E%2E/secret.txt',
    '/api/runs/tiny/files/%252e%252e%252f%252e%252e%252fsecret.txt',
    '/api/runs/tiny/files/%2fetc%2fpasswd',
    '/api/runs/tiny/files//etc/passwd',
    '/api/runs/tiny/files/..%5c..%5csecret.txt',
    '/api/runs/tiny/files/leak.json',
    '/api/runs/escape/files/secret.txt',
    '/api/runs/..%2f/files/secret.txt',
    '/api/runs/%2e%2e/files/secret.txt',
    '/api/runs/tiny/files/config.json%00',
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/%252e%252e/secret.txt',
  ];
  it.each(refused)('refuses %s', async (path) => {
    const response = await get(server.url, path);
    expect([403, 404]).toContain(response.status);
    expect(response.body).not.toContain('TOP-SECRET');
  });

  it('serves a symlink that stays inside the runs directory', async () => {
    const response = await get(server.url, '/api/runs/tiny/files/alias.json');
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body).run.name).toBe('tiny');
  });

  it('binds to 127.0.0.1 by default', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });
});

describe('JSON API', () => {
  it('lists runs with their last metrics line and which files exist', async () => {
    const { runs: list } = JSON.parse((await get(server.url, '/api/runs')).body);
    expect(list.map((r: { name: string }) => r.name)).toEqual(['tiny', 'tiny-compare']);
    const tiny = list[0];
    expect(tiny.last.step).toBe(16);
    expect(tiny.files).toEqual({
      metrics: true,
      expertLoad: true,
      genre: true,
      tokenRouting: true,
      categorySimilarity: true,
      compare: true,
    });
  });

  it('tells a finished run from one training (train.lock held by a live process) and a stopped one', async () => {
    const state = async (name: string) => JSON.parse((await get(server.url, `/api/runs/${name}`)).body).state;
    // the fixture ran all its steps (metrics reach config.optim.steps = 16)
    expect(await state('tiny')).toBe('finished');
    const lock = join(runs, 'tiny', 'train.lock');
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), started: 'now' }));
    try {
      expect(await state('tiny')).toBe('training');
      const listed = JSON.parse((await get(server.url, '/api/runs')).body).runs;
      expect(listed.find((r: { name: string }) => r.name === 'tiny').state).toBe('training');
      // a lock left by a process that is gone does not make the run live
      writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), started: 'then' }));
      expect(await state('tiny')).toBe('finished');
    } finally {
      rmSync(lock);
    }
    const stopped = join(runs, 'stopped');
    cpSync(join(runs, 'tiny'), stopped, { recursive: true });
    const config = JSON.parse(readFileSync(join(stopped, 'config.json'), 'utf8'));
    writeFileSync(
      join(stopped, 'config.json'),
      JSON.stringify({ ...config, optim: { ...config.optim, steps: 40 } }),
    );
    try {
      expect(await state('stopped')).toBe('stopped');
    } finally {
      rmSync(stopped, { recursive: true });
    }
  });

  it('describes a run: config and checkpoints', async () => {
    const detail = JSON.parse((await get(server.url, '/api/runs/tiny')).body);
    expect(detail.config.model.numExperts).toBe(4);
    expect(detail.checkpoints).toEqual([{ step: 16, path: 'checkpoints/step-16', hasTokenizer: true }]);
  });

  it('reads run files raw, with a content type', async () => {
    const load = await get(server.url, '/api/runs/tiny/files/routing/expert-load.json');
    expect(load.type).toContain('application/json');
    expect(JSON.parse(load.body).layers).toHaveLength(2);
    expect((await get(server.url, '/api/runs/tiny/files/checkpoints/step-16/model.safetensors')).type).toBe(
      'application/octet-stream',
    );
  });

  it('finds NAME-compare/compare.json', async () => {
    const compare = JSON.parse((await get(server.url, '/api/runs/tiny/compare')).body);
    expect(compare.runs.map((r: { label: string }) => r.label)).toEqual(['sparsemixer-v2', 'gshard-top2']);
  });

  it('answers 404 with a message for absent runs and files', async () => {
    for (const path of [
      '/api/runs/nope',
      '/api/runs/tiny/files/eval/missing.json',
      '/api/runs/tiny-compare/metrics',
      '/api/other',
    ]) {
      const response = await get(server.url, path);
      expect(response.status).toBe(404);
      expect(JSON.parse(response.body).error).toBeTruthy();
    }
  });

  it('serves the page', async () => {
    const page = await get(server.url, '/');
    expect(page.status).toBe(200);
    expect(page.type).toContain('text/html');
  });
});

describe('live metrics', () => {
  it('reads whole lines from an offset and waits for a line still being written', async () => {
    const path = join(root, 'metrics.jsonl');
    writeFileSync(path, '{"step":1,"loss":5}\n{"step":2,');
    const first = await readMetricsFrom(path, 0);
    expect(first.records).toEqual([{ step: 1, loss: 5 }]);
    appendFileSync(path, '"loss":4}\n');
    const second = await readMetricsFrom(path, first.offset);
    expect(second.records).toEqual([{ step: 2, loss: 4 }]);
    expect((await readMetricsFrom(path, second.offset)).records).toEqual([]);
    writeFileSync(path, '{"step":1,"loss":9}\n'); // a resume truncates the file
    expect(await readMetricsFrom(path, second.offset)).toMatchObject({
      reset: true,
      records: [{ step: 1, loss: 9 }],
    });
  });

  it('polls /metrics?offset=N for appended lines', async () => {
    const all = JSON.parse((await get(server.url, '/api/runs/tiny/metrics?offset=0')).body);
    expect(all.records).toHaveLength(16);
    appendFileSync(join(runs, 'tiny', 'metrics.jsonl'), '{"step":17,"loss":3}\n');
    const next = JSON.parse((await get(server.url, `/api/runs/tiny/metrics?offset=${all.offset}`)).body);
    expect(next.records).toEqual([{ step: 17, loss: 3 }]);
  });

  it('streams appended lines as Server-Sent Events', async () => {
    const { hostname, port } = new URL(server.url);
    const size = JSON.parse((await get(server.url, '/api/runs/tiny/metrics?offset=0')).body).offset;
    const events: string[] = [];
    const received = new Promise<void>((done) => {
      const req = request({ hostname, port, path: `/api/runs/tiny/events?offset=${size}` }, (res) => {
        expect(res.headers['content-type']).toBe('text/event-stream');
        res.on('data', (chunk: Buffer) => {
          events.push(chunk.toString());
          if (events.join('').includes('"step":18')) {
            req.destroy();
            done();
          }
        });
      });
      req.end();
    });
    await new Promise((r) => setTimeout(r, 100));
    appendFileSync(join(runs, 'tiny', 'metrics.jsonl'), '{"step":18,"loss":2.5}\n');
    await received;
    const data = events
      .join('')
      .split('\n')
      .find((line) => line.startsWith('data: '))!;
    expect(JSON.parse(data.slice(6)).records).toEqual([{ step: 18, loss: 2.5 }]);
  });
});
