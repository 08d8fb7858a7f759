// Routing analysis written into the run directory at the end of training:
//   routing/expert-load.json  fraction of picks per expert per layer on the validation windows
//                              (rows sum to 1; balanced = 1/E; max over balanced per layer)
//   routing/genre.json        per category (Brown genre): the distribution of picks over experts
//                              per layer, from the validation windows whose majority genre it is
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GrinModel } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import type { TrainConfig } from './config.js';

export function routingCounts(
  model: GrinModel,
  ids: Int32Array,
  rows: number[],
  seqLen: number,
  batch: number,
): number[][] {
  const L = model.config.numHiddenLayers;
  const E = model.config.numLocalExperts;
  const counts = Array.from({ length: L }, () => new Array<number>(E).fill(0));
  model.eval();
  T.noGrad(() => {
    for (let i = 0; i < rows.length; i += batch) {
      const chunk = rows.slice(i, i + batch);
      T.tidy(() => {
        const data = new Int32Array(chunk.length * seqLen);
        chunk.forEach((r, j) => data.set(ids.subarray(r * seqLen, (r + 1) * seqLen), j * seqLen));
        const { balance } = model.forward(T.tensor(data, { shape: [chunk.length, seqLen], dtype: 'i32' }), {
          training: false,
        });
        balance.forEach((b, l) => {
          const c = b.counts_E.toArray() as Float32Array;
          for (let e = 0; e < E; e++) counts[l]![e]! += c[e]!;
        });
      });
    }
  });
  return counts;
}

const normalise = (row: number[]) => {
  const s = row.reduce((a, b) => a + b, 0);
  return row.map((v) => (s > 0 ? v / s : 0));
};

export function writeRoutingReport(
  runDir: string,
  model: GrinModel,
  validation: { ids: Int32Array; rows: number; category: Uint8Array; categories: string[] },
  config: TrainConfig,
): void {
  const dir = join(runDir, 'routing');
  mkdirSync(dir, { recursive: true });
  const E = model.config.numLocalExperts;
  const all = Array.from({ length: validation.rows }, (_, r) => r);
  const load = routingCounts(model, validation.ids, all, config.data.seqLen, config.optim.batchSize).map(
    normalise,
  );
  writeFileSync(
    join(dir, 'expert-load.json'),
    `${JSON.stringify({ experts: E, balanced: 1 / E, layers: load, maxOverBalanced: load.map((row) => Math.max(...row) * E) }, null, 2)}\n`,
  );
  const genres: Record<string, number[][]> = {};
  validation.categories.forEach((name, c) => {
    const rows = all.filter((r) => validation.category[r] === c);
    if (rows.length)
      genres[name] = routingCounts(
        model,
        validation.ids,
        rows,
        config.data.seqLen,
        config.optim.batchSize,
      ).map(normalise);
  });
  writeFileSync(
    join(dir, 'genre.json'),
    `${JSON.stringify({ experts: E, categories: Object.keys(genres), layers: model.config.numHiddenLayers, distributions: genres }, null, 2)}\n`,
  );
}
