// @grin-moe/hub: Hugging Face Hub models and datasets through the cache layout Python's
// huggingface_hub uses (HF_HOME, HF_HUB_CACHE), resumable verified downloads, and Parquet texts.
// Test: cd packages/hub && npx vitest run
export { type RepoCache, repoCache } from './cache.js';
export {
  type DatasetSelection,
  type FetchedDataset,
  fetchDatasetParquet,
  selectParquetFiles,
} from './dataset-files.js';
export { HubError } from './errors.js';
export {
  type FetchedModel,
  type FetchModelOptions,
  fetchModel,
  MODEL_METADATA_FILES,
} from './model-files.js';
export { parquetColumns, readParquetTexts } from './parquet.js';
export { formatBytes, type ProgressSink, progressBar, renderBar, silentProgress } from './progress.js';
export {
  COMMIT_HASH,
  formatRepoRef,
  looksLikeRepoId,
  parseRepoRef,
  type RepoRef,
  type RepoType,
} from './repo-id.js';
export { checkSafetensorsComplete } from './safetensors-check.js';
export { type HubSettings, hubSettings } from './settings.js';
export { type HubOptions, openSnapshot, type Snapshot } from './snapshot.js';
