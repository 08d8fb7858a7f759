// `grin eval` end to end on tiny runs: `compare` trains sparsemixer-v2 and gshard-top2 from one
// config (4 steps each) and writes the side-by-side curves, each equal to a lone `grin train` of
// that router, loss for loss; ppl, mc, routing and throughput then
// run on one of those run directories and write into it; bad input is named precisely.
// Run: cd apps/trainer && npx vitest run src/commands/eval
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { mergeConfig } from '../train/config.js';
import { tinyConfig, writeTinyCorpus } from '../train/fixtures.js';
import { runTraining } from '../train/loop.js';
import { ProgressBar } from '../train/progress.js';
import { evalCommand } from './eval.js';

const root = mkdtempSync(join(tmpdir(), 'grin-eval-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const data = writeTinyCorpus(root, 24);
const configFile = join(root, 'tiny.json');
writeFileSync(configFile, JSON.stringify(tinyConfig(root, data, 4)));
const evalFixtures = join(import.meta.dirname, '../../../../packages/eval/fixtures');
const run = join(root, 't-sparsemixer-v2');
const quiet = new ProgressBar({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, 1e9);
const readJson = (...path: string[]) => JSON.parse(readFileSync(join(...path), 'utf8'));

async function grin(argv: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return { code: await evalCommand.run(argv), stdout };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('grin eval', () => {
  it('compare trains both routers from one config and writes the curves side by side', async () => {
    const { code, stdout } = await grin(['compare', '--config', configFile, '--name', 't']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/validation loss gshard-top2 - sparsemixer-v2: [+-]\d/);
    const result = readJson(root, 't-compare', 'compare.json');
    expect(result.routers).toEqual(['sparsemixer-v2', 'gshard-top2']);
    expect(result.loss).toHaveLength(4);
    for (const row of result.loss) for (const r of result.routers) expect(Number.isFinite(row[r])).toBe(true);
    // the dashboard's shape: runs[] with label, router and the metrics rows
    expect(result.runs.map((r: { label: string }) => r.label)).toEqual(result.routers);
    expect(result.runs[1].metrics.map((m: { loss: number }) => m.loss)).toEqual(
      result.loss.map((row: Record<string, number>) => row['gshard-top2']),
    );
    const a = readJson(root, 't-sparsemixer-v2', 'config.json');
    const b = readJson(root, 't-gshard-top2', 'config.json');
    expect(a.model.router).toBe('sparsemixer-v2');
    expect({ ...b, run: a.run, model: { ...b.model, router: a.model.router } }).toEqual(a);
    // Each curve is exactly what `grin train --router R` gives for that config alone (same
    // initial weights, batches and draws), step 1 included: the routers differ only in routing.
    for (const router of result.routers) {
      const alone = await runTraining(
        mergeConfig(
          tinyConfig(join(root, 'alone'), data, 4),
          { model: { router }, run: { name: router } },
          'test',
        ),
        { resume: false, progress: quiet },
      );
      const losses = readFileSync(join(alone.runDir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { loss: number }).loss);
      expect(
        result.loss.map((row: Record<string, number>) => row[router]),
        router,
      ).toEqual(losses);
    }
    expect(result.loss[0]['sparsemixer-v2']).not.toBe(result.loss[0]['gshard-top2']);
    expect(result.loss.map((r: { step: number }) => r.step)).toEqual([1, 2, 3, 4]);
    expect(result.validation.map((r: { step: number }) => r.step)).toEqual([4]);
    expect(result.finalValLossDifference).toBeCloseTo(
      result.final['gshard-top2'].valLoss - result.final['sparsemixer-v2'].valLoss,
      12,
    );
    await expect(grin(['compare', '--config', configFile, '--name', 't'])).rejects.toThrow(
      /already holds a run/,
    );
    await expect(grin(['compare', '--routers', 'sparsemixer-v2,nope'])).rejects.toThrow(
      /unknown router 'nope'; valid: /,
    );
  });

  it('ppl, mc and routing write into the run directory', async () => {
    const ppl = await grin(['ppl', '--model', run, '--data', data, '--seq-len', '16']);
    expect(ppl.stdout).toMatch(/^perplexity \d+\.\d+ \(cross-entropy/);
    const p = readJson(run, 'eval', 'perplexity.json');
    expect(p.perplexity).toBeCloseTo(Math.exp(p.meanCrossEntropy), 9);
    await grin([
      'mc',
      '--model',
      run,
      '--data',
      join(evalFixtures, 'hellaswag.jsonl'),
      '--shots',
      '1',
      '--shots-from',
      join(evalFixtures, 'hellaswag-shots.jsonl'),
    ]);
    const mc = readJson(run, 'eval', 'mc-hellaswag.json');
    expect(mc).toMatchObject({ format: 'hellaswag', shots: 1, n: 3 });
    await grin(['routing', '--model', run, '--data', data, '--text', 'the cat sees the ball']);
    const load = readJson(run, 'routing', 'expert-load.json');
    for (const row of load.layers) expect(row.reduce((x: number, y: number) => x + y, 0)).toBeCloseTo(1, 9);
    expect(readJson(run, 'eval', 'category-similarity.json').categories.sort()).toEqual(['even', 'odd']);
    const tokens = readJson(run, 'routing', 'token-routing.json');
    expect(tokens.tokens[0].experts).toHaveLength(2);
    expect(tokens.tokens[0].experts[0]).toHaveLength(2);
  });

  it('throughput prints a bench-style JSON with the MoE-versus-dense ratio', async () => {
    const { stdout } = await grin([
      'throughput',
      '--model',
      run,
      '--steps',
      '1',
      '--warmup',
      '0',
      '--seq-len',
      '8',
      '--batch',
      '2',
      '--json',
    ]);
    const report = JSON.parse(stdout);
    expect(report.bench).toBe('throughput');
    expect(report.ratios.moe_vs_dense).toBeGreaterThan(0);
    expect(report.results.moe.activeParameters).toBeLessThan(report.results.moe.parameters);
    expect(existsSync(join(run, 'eval', 'throughput.json'))).toBe(true);
  });

  it('names bad input and prints help', async () => {
    await expect(grin(['nope'])).rejects.toThrow(
      /unknown analysis 'nope'; valid: ppl, mc, routing, compare, throughput/,
    );
    await expect(grin(['ppl', '--data', data])).rejects.toThrow(/--model DIR is required/);
    await expect(grin(['ppl', '--model', run])).rejects.toThrow(/--data FILE is required/);
    await expect(grin(['ppl', '--model', run, '--data', join(root, 'missing.txt')])).rejects.toThrow(
      /missing\.txt: no such file/,
    );
    await expect(grin(['ppl', '--model', root, '--data', data])).rejects.toThrow(/neither a model directory/);
    await expect(grin(['mc', '--model', run, '--data', join(evalFixtures, 'bad.jsonl')])).rejects.toThrow(
      /bad\.jsonl:2: invalid JSON/,
    );
    await expect(
      grin(['mc', '--model', run, '--data', join(evalFixtures, 'unknown-format.jsonl')]),
    ).rejects.toThrow(/unknown-format\.jsonl:1: unknown multiple-choice format/);
    await expect(grin(['mc', '--model', run, '--data', data, '--format', 'piqa'])).rejects.toThrow(
      /unknown --format 'piqa'; valid: hellaswag, arc, mmlu/,
    );
    await expect(grin(['mc', '--model', run, '--data', data, '--shots', '2'])).rejects.toThrow(
      /--shots-from FILE is required/,
    );
    expect((await grin(['help', 'mc'])).stdout).toMatch(
      /^usage: grin eval mc --model DIR[\s\S]*--shots-from/,
    );
    expect((await grin(['ppl', '--help'])).stdout).toMatch(/^usage: grin eval ppl/);
    expect((await grin(['help'])).stdout).toMatch(/grin eval throughput/);
  });
});
