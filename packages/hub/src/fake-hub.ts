// A Hub on loopback for tests (exported as @grin-moe/hub/testing): the real routes
// GET /api/{models,datasets}/ORG/NAME/revision/REV (sha, siblings) and HEAD/GET
// [/datasets]/ORG/NAME/resolve/REV/PATH with ETag, X-Repo-Commit, X-Linked-Etag / X-Linked-Size
// and a 302 to /cdn/<sha256> for LFS files, which answers Range requests with 206. It records every
// request and can cut a download short once, to test resuming. Binds to 127.0.0.1 only.
// Test: cd packages/hub && npx vitest run src
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  type: 'model' | 'dataset';
  name: string;
  /** commit hash -> files (path -> bytes) */
  commits: Record<string, Record<string, Uint8Array>>;
  /** branch or tag -> commit hash */
  refs: Record<string, string>;
  /** Requests without `Bearer <token>` get 401. */
  token?: string;
}

export interface FakeHubRequest {
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
  /** The repository file whose bytes the answer carried, and how many (0: redirect, HEAD, error). */
  file: string | null;
  sent: number;
}

export interface FakeHub {
  url: string;
  requests: FakeHubRequest[];
  /** GETs that sent file bytes (resolve or cdn), of one repo path or all. */
  downloads(path?: string): FakeHubRequest[];
  /** The next GET of this path sends only `bytes` bytes, then drops the connection. */
  cutOnce(path: string, bytes: number): void;
  close(): Promise<void>;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
// The git blob id, which the Hub sends as the ETag of a file not stored in LFS.
const gitSha1 = (data: Uint8Array) =>
  createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
const isLfs = (path: string, data: Uint8Array) => data.length > 1000 || /\.(safetensors|parquet)$/.test(path);

export async function startFakeHub(repos: FakeRepo[]): Promise<FakeHub> {
  const requests: FakeHubRequest[] = [];
  const cuts = new Map<string, number>();
  const blobs = new Map<string, { path: string; data: Uint8Array }>();
  for (const repo of repos)
    for (const files of Object.values(repo.commits))
      for (const [path, data] of Object.entries(files)) blobs.set(sha256(data), { path, data });

  const find = (type: string, name: string) => repos.find((r) => r.type === type && r.name === name);
  const commitOf = (repo: FakeRepo, revision: string) =>
    repo.commits[revision] ? revision : (repo.refs[revision] ?? null);
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const allowed = (repo: FakeRepo, req: IncomingMessage) =>
    !repo.token || req.headers.authorization === `Bearer ${repo.token}`;

  function sendBytes(
    req: IncomingMessage,
    res: ServerResponse,
    record: FakeHubRequest,
    file: string,
    data: Uint8Array,
    extra: Record<string, string>,
  ) {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const headers: Record<string, string> = {
      ...extra,
      'accept-ranges': 'bytes',
      'content-length': String(data.length - start),
    };
    if (range) headers['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD') return res.end();
    record.file = file;
    const cut = cuts.get(record.file);
    if (cut !== undefined) {
      cuts.delete(record.file);
      record.sent = cut;
      res.write(data.subarray(start, start + cut));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    record.sent = data.length - start;
    res.end(data.subarray(start));
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = decodeURIComponent(url.pathname);
    const record: FakeHubRequest = {
      method: req.method ?? 'GET',
      path,
      range: req.headers.range ?? null,
      authorization: req.headers.authorization ?? null,
      file: null,
      sent: 0,
    };
    requests.push(record);
    const api = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (api) {
      const repo = find(api[1] === 'models' ? 'model' : 'dataset', api[2]!);
      if (!repo) return json(res, 404, { error: 'Repository not found' });
      if (!allowed(repo, req))
        return json(res, 401, { error: 'Invalid credentials in Authorization header' });
      const commit = commitOf(repo, api[3] === 'HEAD' ? 'main' : api[3]!);
      if (!commit) return json(res, 404, { error: `Invalid rev id: ${api[3]}` });
      return json(res, 200, {
        _id: `id-${repo.name}`,
        id: repo.name,
        sha: commit,
        private: Boolean(repo.token),
        downloads: 0,
        likes: 0,
        gated: false,
        lastModified: '2024-09-01T00:00:00.000Z',
        siblings: Object.keys(repo.commits[commit]!).map((rfilename) => ({ rfilename })),
      });
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (cdn) {
      const blob = blobs.get(cdn[1]!);
      if (!blob) return json(res, 404, { error: 'no such object' });
      return sendBytes(req, res, record, blob.path, blob.data, { etag: `"${cdn[1]}"` });
    }
    const resolve = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (resolve) {
      const repo = find(resolve[1] ? 'dataset' : 'model', resolve[2]!);
      if (!repo) return json(res, 404, { error: 'Repository not found' });
      if (!allowed(repo, req)) return json(res, 401, { error: 'Invalid credentials' });
      const commit = commitOf(repo, resolve[3]!);
      const file = commit ? repo.commits[commit]![resolve[4]!] : undefined;
      if (!commit || !file) {
        res.writeHead(404, { 'x-error-code': 'EntryNotFound' });
        return res.end();
      }
      const headers = { 'x-repo-commit': commit };
      if (isLfs(resolve[4]!, file)) {
        const hash = sha256(file);
        res.writeHead(302, {
          ...headers,
          location: `/cdn/${hash}`,
          'x-linked-etag': `"${hash}"`,
          'x-linked-size': String(file.length),
          etag: `"${gitSha1(file)}"`,
        });
        return res.end();
      }
      return sendBytes(req, res, record, resolve[4]!, file, { ...headers, etag: `"${gitSha1(file)}"` });
    }
    json(res, 404, { error: 'unknown route' });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    downloads(path) {
      return requests.filter((r) => r.sent > 0 && (!path || r.file === path));
    },
    cutOnce(path, bytes) {
      cuts.set(path, bytes);
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** A valid safetensors file: one f32 tensor `name` of `count` values i * scale. */
export function safetensorsBytes(name: string, count: number, scale = 1): Uint8Array {
  const header = Buffer.from(
    JSON.stringify({ [name]: { dtype: 'F32', shape: [count], data_offsets: [0, 4 * count] } }),
  );
  const padded = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
  const out = Buffer.alloc(8 + padded.length + 4 * count);
  out.writeBigUInt64LE(BigInt(padded.length), 0);
  padded.copy(out, 8);
  for (let i = 0; i < count; i++) out.writeFloatLE(i * scale, 8 + padded.length + 4 * i);
  return Uint8Array.from(out);
}
