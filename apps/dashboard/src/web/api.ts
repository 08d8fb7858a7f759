// Fetch helpers for the dashboard's JSON API (server/api.ts). A missing file is `null`, not an
// error: most views are optional until `grin eval` has written their data.
// Test: cd apps/dashboard && npx vitest run src/web e2e (e2e drives the page in headless chromium)
export class ApiError extends Error {}

async function get(path: string): Promise<Response | null> {
  const response = await fetch(path, { cache: 'no-store' });
  if (response.status === 404) return null;
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: string };
    throw new ApiError(`${path}: ${response.status} ${body.error ?? response.statusText}`);
  }
  return response;
}

export async function getJson<T>(path: string): Promise<T | null> {
  const response = await get(path);
  return response ? ((await response.json()) as T) : null;
}

export async function getBytes(path: string): Promise<ArrayBuffer | null> {
  const response = await get(path);
  return response ? response.arrayBuffer() : null;
}

export const runPath = (run: string, rest = '') => `api/runs/${encodeURIComponent(run)}${rest}`;
export const filePath = (run: string, file: string) =>
  runPath(run, `/files/${file.split('/').map(encodeURIComponent).join('/')}`);

export interface RunSummary {
  name: string;
  last: Record<string, number> | null;
  /** training: grin train holds the run's lock; finished: all its steps ran; stopped: ended before. */
  state: 'training' | 'finished' | 'stopped';
  files: Record<string, boolean>;
}

export interface RunDetail extends RunSummary {
  config: unknown;
  checkpoints: { step: number; path: string; hasTokenizer: boolean }[];
}
