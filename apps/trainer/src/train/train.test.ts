// `grin train` end to end on a tiny synthetic corpus: the same seed gives the same loss curve bit
// for bit; a run killed with SIGKILL mid-run and resumed reproduces the uninterrupted metrics; a
// non-finite loss (lm_head weights near the f32 maximum: a real overflow) stops the run with the
// last good checkpoint kept; bad input fails before any
// training; the run directory loads with `grin generate`.
// Run: cd apps/trainer && npx vitest run src/train/train
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generate, loadModel, loadTokenizer } from '@grin-moe/model-grin';
import { openSafetensors, writeSafetensors } from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { resolveModelDir } from './checkpoints.js';
import { mergeConfig, type TrainConfig } from './config.js';
import { tinyConfig, writeTinyCorpus } from './fixtures.js';
import { runTraining } from './loop.js';
import { ProgressBar } from './progress.js';

const quiet = () =>
  new ProgressBar({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, 1_000_000);
const metrics = (runDir: string) =>
  readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { tokens_per_s: _ignored, ...rest } = JSON.parse(l) as Record<string, number>;
      return rest;
    });

const root = mkdtempSync(join(tmpdir(), 'grin-train-'));
const data = writeTinyCorpus(root);
const cli = resolve(import.meta.dirname, '../../dist/cli.js');

describe('grin train', () => {
  it('the same seed gives the same loss curve bit for bit', async () => {
    const a = await runTraining(tinyConfig(join(root, 'det-a'), data), { resume: false, progress: quiet() });
    const b = await runTraining(tinyConfig(join(root, 'det-b'), data), { resume: false, progress: quiet() });
    expect(metrics(a.runDir)).toEqual(metrics(b.runDir));
    expect(metrics(a.runDir)).toHaveLength(8);
    expect(Number.isFinite(a.finalValLoss)).toBe(true);
    const routing = JSON.parse(readFileSync(join(a.runDir, 'routing', 'expert-load.json'), 'utf8'));
    expect(routing.layers).toHaveLength(2);
    for (const row of routing.layers)
      expect(row.reduce((x: number, y: number) => x + y, 0)).toBeCloseTo(1, 6);
    const genres = JSON.parse(readFileSync(join(a.runDir, 'routing', 'genre.json'), 'utf8'));
    expect(genres.categories.length).toBeGreaterThan(0);
    for (const c of genres.categories) expect(['even', 'odd']).toContain(c);
    // The load is the token-weighted sum of the genres' distributions: every window routed once.
    const similarity = JSON.parse(readFileSync(join(a.runDir, 'eval', 'category-similarity.json'), 'utf8'));
    expect(similarity.categories).toEqual(genres.categories);
    routing.layers.forEach((row: number[], l: number) => {
      const mixed = row.map((_, e) =>
        genres.categories.reduce(
          (sum: number, c: string) => sum + similarity.tokens[c] * genres.distributions[c][l][e],
          0,
        ),
      );
      const total = mixed.reduce((x, y) => x + y, 0);
      row.forEach((v, e) => expect(v).toBeCloseTo(mixed[e]! / total, 12));
    });
    expect(routing.tokens).toBe(
      Object.values(similarity.tokens as Record<string, number>).reduce((x, y) => x + y),
    );
    for (const matrix of similarity.similarity)
      matrix.forEach((r: number[], i: number) => expect(r[i]).toBe(1));
    const tokens = JSON.parse(readFileSync(join(a.runDir, 'routing', 'token-routing.json'), 'utf8'));
    expect(tokens.layers).toBe(2);
    expect(tokens.tokens.length).toBeGreaterThan(3);
    expect(tokens.text).toMatch(/^(the cat|a dog|the old man|my sister|the teacher|a bird) /);
    for (const t of tokens.tokens) expect(t.experts).toHaveLength(2);
    // a different seed gives a different curve
    const c = await runTraining(
      mergeConfig(tinyConfig(join(root, 'det-c'), data), { run: { seed: 8 } }, 'test'),
      { resume: false, progress: quiet() },
    );
    expect(metrics(c.runDir)).not.toEqual(metrics(a.runDir));
  });

  it('kill -9 mid-run, then --resume, equals the uninterrupted run', async () => {
    if (!existsSync(cli))
      execFileSync('pnpm', ['run', 'build'], { cwd: resolve(import.meta.dirname, '../..'), stdio: 'pipe' });
    const steps = 12;
    const full = await runTraining(tinyConfig(join(root, 'full'), data, steps), {
      resume: false,
      progress: quiet(),
    });
    const configPath = join(root, 'tiny-config.json');
    const config = tinyConfig(join(root, 'killed'), data, steps);
    writeFileSync(configPath, JSON.stringify(config));
    const runDir = join(root, 'killed', 'tiny');
    const child = spawn(process.execPath, [cli, 'train', '--config', configPath], {
      stdio: 'ignore',
      env: { ...process.env, GRIN_CPU_THREADS: '1' },
    });
    // kill as soon as the step-4 checkpoint exists, mid-way through the steps after it
    await new Promise<void>((done, fail) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (
          existsSync(join(runDir, 'checkpoints', 'step-4', 'state.json')) &&
          existsSync(join(runDir, 'metrics.jsonl')) &&
          readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n').length > 5
        ) {
          clearInterval(poll);
          child.kill('SIGKILL');
          done();
        } else if (Date.now() - started > 60_000 || child.exitCode !== null) {
          clearInterval(poll);
          fail(new Error(`the child run ended (${child.exitCode}) or stalled before it could be killed`));
        }
      }, 5);
    });
    await new Promise((r) => child.once('exit', r));
    const before = readdirSync(join(runDir, 'checkpoints'));
    expect(before.some((d) => d.startsWith('step-'))).toBe(true);
    await runTraining(config, { resume: true, progress: quiet() });
    expect(metrics(runDir)).toEqual(metrics(full.runDir));
  }, 180_000);

  it('a non-finite loss (a real overflow) stops the run and keeps the last good checkpoint', async () => {
    const config = tinyConfig(join(root, 'nan'), data, 4);
    const first = await runTraining(config, { resume: false, progress: quiet() });
    // lm_head.weight near the f32 maximum (finite, so the checkpoint still loads): the step-5
    // forward's logits overflow to +-Infinity, and the loss, backward and gradient clipping
    // turn non-finite on their own.
    const file = join(first.runDir, 'checkpoints', 'step-4', 'model.safetensors');
    const saved = openSafetensors(file);
    const entries = saved.names().map((name) => {
      const { dtype, shape } = saved.info(name);
      const data = saved.read(name, 'raw') as Float32Array;
      if (name === 'lm_head.weight') data.forEach((_, i) => (data[i] = i % 2 ? 3e38 : -3e38));
      return [name, { dtype, shape, data }] as const;
    });
    const metadata = saved.metadata;
    saved.close();
    writeSafetensors(file, entries, metadata);
    const r = await runTraining(mergeConfig(config, { optim: { steps: 8 } }, 'test'), {
      resume: true,
      progress: quiet(),
    });
    expect(r.stoppedEarly).toMatch(
      /^step 5: the loss is (NaN|Infinity); stopped\. The last good checkpoint is .*step-4\.$/,
    );
    expect(readdirSync(join(r.runDir, 'checkpoints'))).toEqual(['step-4']);
    expect(metrics(r.runDir).map((m) => m.step)).toEqual([1, 2, 3, 4]);
  });

  it('refuses bad input before training, naming the problem', async () => {
    const withData = (file: string, patch: object = {}): TrainConfig =>
      mergeConfig(tinyConfig(join(root, 'bad'), file), patch, 'test');
    await expect(
      runTraining(withData(join(root, 'nope.jsonl')), { resume: false, progress: quiet() }),
    ).rejects.toThrow(/nope.jsonl/);
    writeFileSync(join(root, 'empty.txt'), '');
    await expect(
      runTraining(withData(join(root, 'empty.txt')), { resume: false, progress: quiet() }),
    ).rejects.toThrow(/empty/);
    // a model directory whose vocabulary is smaller than its tokenizer's
    const small = await runTraining(tinyConfig(join(root, 'src'), data, 4), {
      resume: false,
      progress: quiet(),
    });
    const modelDir = resolveModelDir(small.runDir);
    const cfg = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8'));
    await expect(
      runTraining(
        withData(data, {
          data: { initFrom: modelDir, seqLen: cfg.max_position_embeddings + 1 },
          run: { name: 'x1' },
        }),
        { resume: false, progress: quiet() },
      ),
    ).rejects.toThrow(/data.seqLen \(\d+\) exceeds max_position_embeddings/);
    writeFileSync(join(modelDir, 'config.json'), JSON.stringify({ ...cfg, vocab_size: 100 }));
    await expect(
      runTraining(withData(data, { data: { initFrom: modelDir }, run: { name: 'x2' } }), {
        resume: false,
        progress: quiet(),
      }),
    ).rejects.toMatchObject({
      message: `${join(modelDir, 'tokenizer.json')}: the tokenizer has 300 tokens but the model's vocab_size is 100 (config.json); they must agree`,
    });
  });

  it('--init-from continues from a model directory with its own tokenizer', async () => {
    const base = await runTraining(tinyConfig(join(root, 'base'), data, 4), {
      resume: false,
      progress: quiet(),
    });
    const modelDir = resolveModelDir(base.runDir);
    const next = await runTraining(
      mergeConfig(tinyConfig(join(root, 'next'), data, 4), { data: { initFrom: modelDir } }, 'test'),
      { resume: false, progress: quiet() },
    );
    // it starts where the base model ended, not from a fresh init
    const first = metrics(next.runDir)[0]!;
    expect(first.loss).toBeLessThan(metrics(base.runDir)[0]!.loss);
    expect(readFileSync(join(resolveModelDir(next.runDir), 'tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(modelDir, 'tokenizer.json'), 'utf8'),
    );
  });

  it('the run directory loads with generate', async () => {
    const r = await runTraining(tinyConfig(join(root, 'gen'), data, 4), { resume: false, progress: quiet() });
    const dir = resolveModelDir(r.runDir);
    const model = loadModel(dir);
    const tokenizer = loadTokenizer(dir);
    const prompt = tokenizer.encode('the cat sees');
    const out = generate(model, prompt, { maxNewTokens: 5, temperature: 0 });
    expect(out.tokens.length).toBeGreaterThan(0);
    expect(typeof tokenizer.decode(out.tokens)).toBe('string');
  });
});
