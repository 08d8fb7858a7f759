// A repository at one commit in the cache: the revision resolved through the Hub's API
// (/api/{models,datasets}/{id}/revision/{rev}, via @huggingface/hub, which also lists the files),
// or through refs/ when offline (HF_HUB_OFFLINE=1) or the Hub cannot be reached; then fetch()
// brings the named files into snapshots/<commit>/, downloading only those not there yet.
// Test: cd packages/hub && npx vitest run test/download
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { datasetInfo, HubApiError, modelInfo } from '@huggingface/hub';
import { repoCache } from './cache.js';
import { downloadBlob } from './download.js';
import { HubError } from './errors.js';
import { authHeaders, causeOf, headFile, resolveUrl, statusError } from './http.js';
import { type ProgressSink, progressBar } from './progress.js';
import { formatRepoRef, type RepoRef } from './repo-id.js';
import { checkSafetensorsComplete } from './safetensors-check.js';
import { type HubSettings, hubSettings } from './settings.js';

export interface HubOptions {
  settings?: HubSettings;
  progress?: ProgressSink;
  /** Notes for the user (cache fallbacks); stderr by default. */
  log?: (line: string) => void;
}

export interface Snapshot {
  ref: RepoRef;
  commit: string;
  /** CACHE/models--ORG--NAME/snapshots/<commit>: a directory like any local model directory. */
  dir: string;
  /** The repository's files at this commit, or null when only the cache was consulted. */
  files: string[] | null;
  /** Whether the repository has the file (online), or the cache has it (offline). */
  has(path: string): boolean;
  /** Brings the files into `dir`, downloading those missing; returns their local paths. */
  fetch(paths: readonly string[]): Promise<string[]>;
}

interface Resolved {
  commit: string;
  files: string[] | null;
}

async function resolveOnline(ref: RepoRef, settings: HubSettings): Promise<Resolved> {
  // The token travels in a header we add, so @huggingface/hub's check that tokens start with
  // 'hf_' does not refuse the tokens of self-hosted endpoints.
  const params = {
    name: ref.name,
    revision: ref.revision,
    hubUrl: settings.endpoint,
    additionalFields: ['sha', 'siblings'] as never[],
    fetch: (url: string | URL | Request, init?: RequestInit) =>
      fetch(url, { ...init, headers: { ...(init?.headers as object), ...authHeaders(settings.token) } }),
  };
  const info = (ref.type === 'model' ? await modelInfo(params) : await datasetInfo(params)) as unknown as {
    sha?: string;
    siblings?: { rfilename: string }[];
  };
  if (!info.sha) throw new HubError(`${formatRepoRef(ref)}: the Hub's answer names no commit (sha)`);
  return { commit: info.sha, files: (info.siblings ?? []).map((s) => s.rfilename) };
}

function notCached(ref: RepoRef, folder: string, why: string): HubError {
  return new HubError(
    `${formatRepoRef(ref)}: the ${ref.type} is not in the cache (${why}); looked in ${folder}. ` +
      'Download it once with the Hub reachable, or point HF_HUB_CACHE / HF_HOME at a cache that has it',
  );
}

export async function openSnapshot(ref: RepoRef, options: HubOptions = {}): Promise<Snapshot> {
  const settings = options.settings ?? hubSettings();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const progress = options.progress ?? progressBar();
  const cache = repoCache(settings.cacheDir, ref);
  const id = formatRepoRef(ref);
  let resolved: Resolved;
  if (settings.offline) {
    const commit = cache.readRef(ref.revision);
    if (!commit || !existsSync(cache.snapshot(commit)))
      throw notCached(ref, cache.folder, 'HF_HUB_OFFLINE=1');
    resolved = { commit, files: null };
  } else {
    try {
      resolved = await resolveOnline(ref, settings);
      cache.writeRef(ref.revision, resolved.commit);
    } catch (error) {
      if (error instanceof HubApiError) {
        if (error.statusCode === 404)
          throw new HubError(
            `${id}: no such ${ref.type} or revision '${ref.revision}' on the Hub (HTTP 404)`,
          );
        throw statusError(id, error.statusCode, settings.token);
      }
      if (error instanceof HubError) throw error;
      // The Hub is out of reach: what the cache holds for this revision is used, as Python does.
      const commit = cache.readRef(ref.revision);
      const why = `cannot reach ${settings.endpoint}: ${causeOf(error)}`;
      if (!commit || !existsSync(cache.snapshot(commit))) throw notCached(ref, cache.folder, why);
      log(`${id}: ${why}; using the cached snapshot ${commit}`);
      resolved = { commit, files: null };
    }
  }
  const { commit, files } = resolved;
  const dir = cache.snapshot(commit);
  const listed = files ? new Set(files) : null;
  const has = (path: string) => (listed ? listed.has(path) : existsSync(join(dir, path)));

  async function fetchOne(path: string): Promise<string> {
    const local = join(dir, path);
    if (existsSync(local)) {
      if (path.endsWith('.safetensors')) checkSafetensorsComplete(local, `${id}: ${path} (${local})`);
      return local;
    }
    if (listed && !listed.has(path))
      throw new HubError(`${id}: the repository has no file '${path}' at ${commit}`);
    if (!listed)
      throw notCached(
        ref,
        cache.folder,
        `${path} is missing from snapshot ${commit} and the Hub is not consulted`,
      );
    const url = resolveUrl(settings.endpoint, ref.type, ref.name, commit, path);
    const info = await headFile(url, `${id}: ${path}`, settings.token);
    const blob = cache.blob(info.etag);
    if (!existsSync(blob))
      await downloadBlob({ url, file: `${ref.name}/${path}`, blob, info, token: settings.token, progress });
    cache.link(commit, path, info.etag);
    if (path.endsWith('.safetensors')) checkSafetensorsComplete(local, `${id}: ${path} (${local})`);
    return local;
  }

  return {
    ref,
    commit,
    dir,
    files,
    has,
    async fetch(paths) {
      const out: string[] = [];
      for (const path of paths) out.push(await fetchOne(path));
      return out;
    },
  };
}
