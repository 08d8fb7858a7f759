// The Hub's file routes over plain fetch: HEAD /{repo}/resolve/{commit}/{path} for the file's
// etag and size (read from the first response, before any redirect, as huggingface_hub does:
// X-Linked-Etag / X-Linked-Size there describe the LFS object), and GET with redirects followed
// by hand so the token is never sent to another host (the Hub redirects LFS files to a CDN).
// Test: cd packages/hub && npx vitest run test/download
import { HubError } from './errors.js';

export interface FileInfo {
  etag: string;
  size: number;
  commit: string | null;
}

export function resolveUrl(
  endpoint: string,
  type: 'model' | 'dataset',
  name: string,
  commit: string,
  path: string,
) {
  const prefix = type === 'dataset' ? 'datasets/' : '';
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${prefix}${name}/resolve/${encodeURIComponent(commit)}/${encoded}`;
}

/** `W/"abc"` -> `abc`: the blob's name in the cache. */
export function normalizeEtag(etag: string | null): string | null {
  if (!etag) return null;
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1') || null;
}

export function authHeaders(token: string | null): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** An error for a refused request, naming what was asked and what to do about it. */
export function statusError(what: string, status: number, token: string | null): HubError {
  if (status === 401 || status === 403) {
    return new HubError(
      token
        ? `${what}: the Hub refused the token (HTTP ${status}); check that HF_TOKEN has read access and that the repository's terms were accepted on its page`
        : `${what}: the Hub answered HTTP ${status} without a token: the repository is private, gated or does not exist; set HF_TOKEN to a read token with access and run again`,
    );
  }
  if (status === 404) return new HubError(`${what}: not found on the Hub (HTTP 404)`);
  return new HubError(`${what}: the Hub answered HTTP ${status}`);
}

export async function headFile(url: string, file: string, token: string | null): Promise<FileInfo> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'HEAD',
      redirect: 'manual',
      headers: { ...authHeaders(token), 'accept-encoding': 'identity' },
    });
  } catch (error) {
    throw new HubError(`${file}: cannot reach the Hub at ${new URL(url).origin} (${causeOf(error)})`);
  }
  if (response.status >= 400) throw statusError(file, response.status, token);
  const header = (name: string) => response.headers.get(name);
  const etag = normalizeEtag(header('x-linked-etag') ?? header('etag'));
  const size = Number(header('x-linked-size') ?? header('content-length'));
  if (!etag || !Number.isFinite(size)) {
    throw new HubError(`${file}: the Hub's answer for ${url} has no ETag or size; is HF_ENDPOINT a Hub?`);
  }
  return { etag, size, commit: header('x-repo-commit') };
}

/** GET, following redirects; the token goes only to the endpoint's own origin. */
export async function getFile(
  url: string,
  file: string,
  token: string | null,
  from: number,
): Promise<Response> {
  const origin = new URL(url).origin;
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    const sameOrigin = new URL(current).origin === origin;
    let response: Response;
    try {
      response = await fetch(current, {
        redirect: 'manual',
        headers: {
          ...(sameOrigin ? authHeaders(token) : {}),
          'accept-encoding': 'identity',
          ...(from > 0 ? { range: `bytes=${from}-` } : {}),
        },
      });
    } catch (error) {
      throw new HubError(`${file}: cannot reach ${new URL(current).origin} (${causeOf(error)})`);
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      current = new URL(location, current).toString();
      continue;
    }
    if (response.status >= 400) throw statusError(file, response.status, token);
    return response;
  }
  throw new HubError(`${file}: more than 10 redirects from ${url}`);
}

export function causeOf(error: unknown): string {
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(error);
}
