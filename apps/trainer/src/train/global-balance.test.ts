// Global balance over gradient accumulation (balance-counts.ts): with lbMode 'global', a step of
// gradAccum 2 x batch 4 trains exactly like gradAccum 1 x batch 8 (same rows, same seed): the
// loss, the balance loss and the gradient norm of 20 steps agree within 1e-5 relative. The router
// is deterministic (gshard-top2, no input jitter), so both runs route the same tokens the same
// way; with a sampling router the two layouts draw different numbers. In local mode the two differ
// (each micro-batch balanced on its own), which shows the comparison can tell. Also the closed
// form on a GrinModel: two micro-batches balanced with their summed counts give the concatenated
// batch's balance loss and router-weight gradient.
// Test: cd apps/trainer && npx vitest run src/train/global-balance.test.ts
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRandom, parseConfig } from '@grin-moe/model-grin';
import { balanceCounts, balanceLoss } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { mergeConfig, type TrainConfig } from './config.js';
import { tinyConfig, writeTinyCorpus } from './fixtures.js';
import { runTraining } from './loop.js';
import { ProgressBar } from './progress.js';

const root = mkdtempSync(join(tmpdir(), 'grin-balance-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const data = writeTinyCorpus(root);
const quiet = () =>
  new ProgressBar({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, 1_000_000);

interface Row {
  loss: number;
  aux_loss: number;
  grad_norm: number;
}
function metrics(runDir: string): Row[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

async function run(name: string, gradAccum: number, batchSize: number, lbMode: 'local' | 'global') {
  const config: TrainConfig = mergeConfig(
    tinyConfig(root, data, 20),
    {
      run: { name },
      model: { router: 'gshard-top2', inputJitter: 0 },
      optim: { gradAccum, batchSize, lbMode, lbAlpha: 0.05 },
      eval: { every: 100 },
      checkpoint: { every: 100 },
    },
    'global balance test',
  );
  const summary = await runTraining(config, { resume: false, progress: quiet() });
  return metrics(summary.runDir);
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));

describe('global balance over gradient accumulation', () => {
  it('gradAccum 2 x batch 4 trains like gradAccum 1 x batch 8 (20 steps within 1e-5)', async () => {
    const whole = await run('whole', 1, 8, 'global');
    const accumulated = await run('accumulated', 2, 4, 'global');
    expect(accumulated).toHaveLength(20);
    let worst = 0;
    accumulated.forEach((r, i) => {
      const w = whole[i]!;
      const differences = [
        relative(r.loss, w.loss),
        relative(r.aux_loss, w.aux_loss),
        relative(r.grad_norm, w.grad_norm),
      ];
      worst = Math.max(worst, ...differences);
      expect(
        Math.max(...differences),
        `step ${i + 1}: ${JSON.stringify(r)} vs ${JSON.stringify(w)}`,
      ).toBeLessThan(1e-5);
    });
    expect(whole.at(-1)!.loss).toBeLessThan(whole[0]!.loss - 0.1); // training moved
    console.log(`global balance, gradAccum 2 vs 1: max relative difference ${worst.toExponential(2)}`);
  });

  it('in local mode the micro-batches balance on their own, and the curves part', async () => {
    const whole = await run('whole-local', 1, 8, 'local');
    const accumulated = await run('accumulated-local', 2, 4, 'local');
    const auxGap = Math.max(...accumulated.map((r, i) => relative(r.aux_loss, whole[i]!.aux_loss)));
    expect(auxGap).toBeGreaterThan(1e-4);
  });

  it('closed form: two micro-batches with their summed counts give the joined batch (loss and router gradient)', async () => {
    const config = parseConfig({
      vocab_size: 30,
      hidden_size: 16,
      intermediate_size: 12,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      num_local_experts: 4,
      initializer_range: 0.3,
      router: 'gshard-top2',
      input_jitter_noise: 0,
    });
    const ids = (offset: number) =>
      T.tensor(
        Array.from({ length: 2 * 6 }, (_, i) => (offset + i * 7) % 30),
        { shape: [2, 6], dtype: 'i32' },
      );
    const gate = 'model.layers.1.block_sparse_moe.gate.weight';
    // Micro-batches: each forward keeps its graph; f from both; the mean of their losses.
    const split = initRandom(config, new T.Generator(3));
    const outs = [ids(0), ids(5)].map((b) => split.forward(b, { training: true }));
    const counts_LF = T.add(balanceCounts(outs[0]!.balance), balanceCounts(outs[1]!.balance));
    let mean: T.Tensor | null = null;
    for (const out of outs) {
      const { loss } = await balanceLoss(out.balance, { alpha: 0.05, mode: 'global', counts_LF });
      mean = mean ? T.add(mean, T.div(loss, 2)) : T.div(loss, 2);
    }
    mean!.backward();
    // The joined batch: rows of both micro-batches in one forward.
    const joined = initRandom(config, new T.Generator(3));
    const out = joined.forward(T.concat([ids(0), ids(5)], 0), { training: true });
    const { loss } = await balanceLoss(out.balance, { alpha: 0.05, mode: 'local' });
    loss.backward();
    expect(relative(mean!.item() as number, loss.item() as number)).toBeLessThan(1e-6);
    const a = split.params.get(gate)!.grad!.toArray() as Float32Array;
    const b = joined.params.get(gate)!.grad!.toArray() as Float32Array;
    const scale = Math.max(...b.map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!))) / scale).toBeLessThan(1e-5);
  });
});
