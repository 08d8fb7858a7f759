// A small synthetic corpus and a tiny model config, so that training tests run in seconds.
// Test: cd apps/trainer && npx vitest run src/train
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainConfig } from './config.js';
import { defaultTrainConfig, mergeConfig, validateConfig } from './config.js';

const subjects = ['the cat', 'a dog', 'the old man', 'my sister', 'the teacher', 'a bird'];
const verbs = ['sees', 'likes', 'follows', 'finds', 'calls', 'watches'];
const objects = ['the ball', 'a tree', 'the river', 'our house', 'the moon', 'a small boat'];

/** JSONL with `docs` documents in two categories; deterministic. */
export function writeTinyCorpus(dir: string, docs = 60): string {
  const lines: string[] = [];
  for (let d = 0; d < docs; d++) {
    const sentences: string[] = [];
    for (let s = 0; s < 6; s++) {
      const i = (d * 7 + s * 3) % 6;
      sentences.push(`${subjects[i]} ${verbs[(i + d) % 6]} ${objects[(i + s) % 6]}.`);
    }
    lines.push(JSON.stringify({ text: sentences.join(' '), category: d % 2 ? 'odd' : 'even' }));
  }
  const path = join(dir, 'tiny.jsonl');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

export function tinyConfig(out: string, data: string, steps = 8): TrainConfig {
  return validateConfig(
    mergeConfig(
      defaultTrainConfig,
      {
        run: { out, name: 'tiny', seed: 7 },
        data: { source: 'file', file: data, seqLen: 16, vocabSize: 300, validationFraction: 0.2 },
        model: {
          hiddenSize: 32,
          intermediateSize: 24,
          numLayers: 2,
          numHeads: 2,
          numKvHeads: 1,
          numExperts: 4,
          topK: 2,
          slidingWindow: 8,
        },
        optim: { steps, batchSize: 4, gradAccum: 2, lr: 0.01, minLr: 0.001, warmupSteps: 2 },
        eval: { every: 4, batches: 2 },
        checkpoint: { every: 4, keep: 2 },
        timeBudgetSeconds: 0,
      },
      'tiny test config',
    ),
  );
}
