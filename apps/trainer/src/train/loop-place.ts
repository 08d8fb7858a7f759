// The place step of `grin train`: the CPU-built model copied to the run's device and dtype (the
// CPU f32 original freed when a copy was made), and the log lines that describe data and model.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts src/train/cuda.test.ts
import type { TrainConfig } from './config.js';
import { type PlacedModel, toDevice } from './device.js';
import type { TrainingData } from './prepare.js';
import type { ProgressBar } from './progress.js';

export function placeModel(config: TrainConfig, data: TrainingData, progress: ProgressBar): PlacedModel {
  const { tokenizer, train, validation, unigram } = data;
  const placed = toDevice(data.model, config.device, config.dtype);
  if (placed.device !== 'cpu' || placed.dtype !== 'f32') data.model.dispose();
  const device = placed.device;
  progress.log(
    `data: ${train.stream.tokens.length} train / ${validation.ids.length} validation tokens, vocab ${tokenizer.vocabSize}, ` +
      `unigram entropy ${unigram.trainEntropy.toFixed(4)} nats (validation cross-entropy ${unigram.validationCrossEntropy.toFixed(4)})`,
  );
  progress.log(
    `model: ${countParams(placed)} parameters (${config.model.numLayers} layers, ${config.model.numExperts} experts top-${config.model.topK}, router ${config.model.router})` +
      (device === 'cpu'
        ? ''
        : ` on ${device}, ${config.dtype}${config.dtype === 'bf16' ? ' compute with f32 master weights' : ''}`),
  );
  return placed;
}

function countParams(model: { parameters(): { size: number }[] }): string {
  const n = model.parameters().reduce((a, p) => a + p.size, 0);
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`;
}
