// The files a model needs, fetched in two steps so a caller can refuse before the big download:
// config.json and the tokenizer files first, then `beforeWeights(dir)` (the memory estimate, from
// config.json alone), then the safetensors weights: every shard the index names, or
// model.safetensors. Nothing else (no PyTorch .bin, no ONNX, no README) is downloaded.
// Test: cd packages/hub && npx vitest run test/model
import { readFileSync } from 'node:fs';
import { HubError } from './errors.js';
import { formatRepoRef, parseRepoRef, type RepoRef } from './repo-id.js';
import { type HubOptions, openSnapshot } from './snapshot.js';

/** Read when present; config.json is required. */
export const MODEL_METADATA_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
] as const;

export interface FetchModelOptions extends HubOptions {
  /** Runs after config.json and the tokenizer files are local, before any weights are fetched. */
  beforeWeights?: (dir: string) => void | Promise<void>;
  /** false: config and tokenizer only. */
  weights?: boolean;
}

export interface FetchedModel {
  ref: RepoRef;
  commit: string;
  /** A local model directory: the snapshot in the cache. */
  dir: string;
}

function weightFiles(indexPath: string | null): string[] {
  if (!indexPath) return ['model.safetensors'];
  let map: Record<string, string>;
  try {
    map = (JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
  } catch (error) {
    throw new HubError(
      `${indexPath}: not a safetensors index with a weight_map (${(error as Error).message})`,
    );
  }
  if (!map || typeof map !== 'object')
    throw new HubError(`${indexPath}: not a safetensors index: it has no weight_map`);
  const shards = [...new Set(Object.values(map))].sort();
  for (const shard of shards) {
    if (typeof shard !== 'string' || shard.includes('..') || shard.startsWith('/'))
      throw new HubError(`${indexPath}: weight_map names an unsafe file '${String(shard)}'`);
  }
  return shards;
}

export async function fetchModel(
  id: string | RepoRef,
  options: FetchModelOptions = {},
): Promise<FetchedModel> {
  const ref = typeof id === 'string' ? parseRepoRef(id, 'model') : id;
  const snapshot = await openSnapshot(ref, options);
  const name = formatRepoRef(ref);
  if (!snapshot.has('config.json')) {
    throw new HubError(
      snapshot.files
        ? `${name}: the repository has no config.json at ${snapshot.commit}; not a transformers model`
        : `${name}: config.json is not in the cached snapshot ${snapshot.commit}`,
    );
  }
  await snapshot.fetch(MODEL_METADATA_FILES.filter((f) => snapshot.has(f)));
  await options.beforeWeights?.(snapshot.dir);
  if (options.weights !== false) {
    const index = 'model.safetensors.index.json';
    if (!snapshot.has(index) && !snapshot.has('model.safetensors')) {
      const other = (snapshot.files ?? []).filter((f) => /\.(bin|pt|pth|ckpt|gguf|onnx)$/.test(f));
      throw new HubError(
        snapshot.files
          ? `${name}: no safetensors weights (model.safetensors or ${index}) at ${snapshot.commit}` +
              (other.length ? `; it has ${other.slice(0, 3).join(', ')}, which are not read here` : '')
          : `${name}: the weights (model.safetensors or ${index}) are not in the cached snapshot ${snapshot.commit}`,
      );
    }
    const [indexPath] = snapshot.has(index) ? await snapshot.fetch([index]) : [null];
    await snapshot.fetch(weightFiles(indexPath ?? null));
  }
  return { ref, commit: snapshot.commit, dir: snapshot.dir };
}
