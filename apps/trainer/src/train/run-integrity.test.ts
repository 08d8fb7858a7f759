// A run directory under stress: --resume takes the run's config and refuses conflicting flags; one
// writer per run (live lock refused naming the pid, stale and torn locks taken over); a torn
// metrics.jsonl tail is trimmed with a note and a damaged middle line is named; checkpoints are
// complete only with a matching manifest, interrupted re-saves are recovered, a damaged newest
// checkpoint falls back to the previous one (bit-identical to an uninterrupted run), and a failed
// save (file size limit, the same path as a full disk) removes its partial directory.
// Run: cd apps/trainer && npx vitest run src/train/run-integrity.test.ts
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError, parseFlags } from '../args.js';
import { resolveResumeConfig, trainCommand } from '../commands/train.js';
import { checkpointDir, completeCheckpoints, listCheckpoints, recoverCheckpoints } from './checkpoints.js';
import { mergeConfig } from './config.js';
import { tinyConfig, writeTinyCorpus } from './fixtures.js';
import { JsonFileError } from './json-file.js';
import { runTraining } from './loop.js';
import { truncateMetrics } from './metrics-file.js';
import { ProgressBar } from './progress.js';
import { acquireRunLock, LOCK_FILE, RunLockedError } from './run-lock.js';

const root = mkdtempSync(join(tmpdir(), 'grin-integrity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const data = writeTinyCorpus(root);

function recorder() {
  const lines: string[] = [];
  const progress = new ProgressBar(
    { isTTY: false, write: (t: string) => lines.push(t) } as unknown as NodeJS.WriteStream,
    1_000_000,
  );
  return { lines, progress, log: (line: string) => lines.push(line) };
}
const metrics = (runDir: string) =>
  readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { tokens_per_s: _t, ...rest } = JSON.parse(l) as Record<string, number>;
      return rest;
    });
const flagsOf = (argv: string[]) => parseFlags(trainCommand, argv).flags;

describe('--resume trusts the run, not the command line', async () => {
  const out = join(root, 'resume');
  const config = tinyConfig(out, data, 4);
  await runTraining(mergeConfig(config, { model: { router: 'gshard-top2' } }, 'test'), {
    resume: false,
    progress: recorder().progress,
  });
  const runDir = join(out, 'tiny');

  it('takes data and router from the saved config when the flags leave them out', () => {
    const resumed = resolveResumeConfig(flagsOf(['--out', out, '--name', 'tiny', '--resume']));
    expect(resumed.data.file).toBe(data); // not the Brown corpus of the embedded default
    expect(resumed.model.router).toBe('gshard-top2');
    expect(resumed.model.hiddenSize).toBe(32);
  });

  it('refuses a conflicting flag, naming both values', () => {
    for (const [argv, message] of [
      [
        ['--router', 'sparsemixer-v2'],
        /--router sets model\.router to "sparsemixer-v2", but the run has "gshard-top2"/,
      ],
      [
        ['--data', join(root, 'other.txt')],
        /--data sets data\.file to ".*other\.txt", but the run has ".*tiny\.jsonl"/,
      ],
      [['--seed', '9'], /--seed sets run\.seed to 9, but the run has 7/],
    ] as const) {
      expect(() =>
        resolveResumeConfig(flagsOf(['--out', out, '--name', 'tiny', '--resume', ...argv])),
      ).toThrow(CliError);
      expect(() =>
        resolveResumeConfig(flagsOf(['--out', out, '--name', 'tiny', '--resume', ...argv])),
      ).toThrow(message);
    }
    const file = join(root, 'wider.json');
    writeFileSync(file, JSON.stringify({ run: { out, name: 'tiny' }, model: { hiddenSize: 64 } }));
    expect(() => resolveResumeConfig(flagsOf(['--config', file, '--resume']))).toThrow(
      /wider\.json sets model\.hiddenSize to 64, but the run has 32/,
    );
  });

  it('allows what may change (more steps, a time budget) and saves it', async () => {
    const resumed = resolveResumeConfig(
      flagsOf(['--out', out, '--name', 'tiny', '--resume', '--max-steps', '6', '--time-budget', '100']),
    );
    expect(resumed.optim.steps).toBe(6);
    expect(resumed.timeBudgetSeconds).toBe(100);
    await runTraining(resumed, { resume: true, progress: recorder().progress });
    expect(metrics(runDir).map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')).model.router).toBe('gshard-top2');
  });

  it('runTraining itself refuses a config that differs from the run', async () => {
    await expect(runTraining(config, { resume: true, progress: recorder().progress })).rejects.toThrow(
      /model\.router: the run has "gshard-top2", requested "sparsemixer-v2"/,
    );
  });
});

describe('one writer per run', () => {
  const runDir = join(root, 'locked');
  mkdirSync(runDir, { recursive: true });
  const lockPath = join(runDir, LOCK_FILE);

  it('refuses a live holder, naming its pid', () => {
    const sleeper = spawn('sleep', ['30']);
    try {
      writeFileSync(lockPath, JSON.stringify({ pid: sleeper.pid, host: hostname(), started: 'then' }));
      expect(() => acquireRunLock(runDir, () => {})).toThrow(
        new RegExp(`being trained by pid ${sleeper.pid} `),
      );
      writeFileSync(lockPath, JSON.stringify({ pid: 1, host: 'other-host', started: 'then' }));
      expect(() => acquireRunLock(runDir, () => {})).toThrow(/pid 1 on host other-host/);
    } finally {
      sleeper.kill();
      rmSync(lockPath, { force: true });
    }
  });

  it('takes over a dead holder and a torn lock, with a message, and releases', () => {
    const dead = spawnSync('true').pid!;
    writeFileSync(lockPath, JSON.stringify({ pid: dead, host: hostname(), started: 'then' }));
    const notes: string[] = [];
    const lock = acquireRunLock(runDir, (l) => notes.push(l));
    expect(notes).toEqual([`${lockPath}: taking over the lock of pid ${dead}, which is no longer running`]);
    expect(JSON.parse(readFileSync(lockPath, 'utf8')).pid).toBe(process.pid);
    lock.release();
    expect(existsSync(lockPath)).toBe(false);
    writeFileSync(lockPath, '{"pid": 12');
    const again = acquireRunLock(runDir, (l) => notes.push(l));
    expect(notes[1]).toMatch(/taking over a torn lock file/);
    again.release();
  });

  it('a second training of the same run is refused while the first runs', async () => {
    const config = tinyConfig(join(root, 'twice'), data, 4);
    const first = runTraining(config, { resume: false, progress: recorder().progress });
    await expect(runTraining(config, { resume: true, progress: recorder().progress })).rejects.toThrow(
      RunLockedError,
    );
    await first;
    expect(metrics(join(root, 'twice', 'tiny')).map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(existsSync(join(root, 'twice', 'tiny', LOCK_FILE))).toBe(false);
  });
});

describe('torn metrics.jsonl', () => {
  const dir = join(root, 'torn');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'metrics.jsonl');
  const line = (step: number) => `${JSON.stringify({ step, loss: 1 })}\n`;

  it('trims a torn last line with a note and keeps steps up to the checkpoint', () => {
    writeFileSync(path, line(1) + line(2) + line(3) + '{"step":4,"lo');
    const notes: string[] = [];
    expect(truncateMetrics(dir, 2, (l) => notes.push(l))).toBe(2);
    expect(readFileSync(path, 'utf8')).toBe(line(1) + line(2));
    expect(notes).toEqual([`${path}:4: trimmed a torn last line ("{\\"step\\":4,\\"lo")`]);
  });

  it('names the file and line of a damaged line before the last', () => {
    writeFileSync(path, line(1) + 'garbage\n' + line(3));
    expect(() => truncateMetrics(dir, 3, () => {})).toThrow(JsonFileError);
    expect(() => truncateMetrics(dir, 3, () => {})).toThrow(new RegExp(`${path}:2: not valid JSON`));
  });
});

describe('checkpoints: manifest, recovery, fallback', async () => {
  const full = await runTraining(tinyConfig(join(root, 'full'), data, 12), {
    resume: false,
    progress: recorder().progress,
  });
  const base = tinyConfig(join(root, 'ck'), data, 12);
  // killed after step 9 (checkpoints at 4 and 8), as the 12-step run's schedule
  await runTraining(base, { resume: false, abortAfterStep: 9, progress: recorder().progress });
  const runDir = join(root, 'ck', 'tiny');

  it('a checkpoint is complete only when its manifest matches every file', () => {
    expect(completeCheckpoints(runDir)).toEqual([4, 8]);
    const manifest = JSON.parse(readFileSync(join(checkpointDir(runDir, 8), 'manifest.json'), 'utf8'));
    expect(Object.keys(manifest.files).sort()).toEqual(
      readdirSync(checkpointDir(runDir, 8))
        .filter((f) => f !== 'manifest.json')
        .sort(),
    );
    const copy = join(root, 'ck-copy');
    cpSync(runDir, copy, { recursive: true });
    rmSync(join(checkpointDir(copy, 8), 'config.json'));
    truncateSync(join(checkpointDir(copy, 4), 'model.safetensors'), 100);
    expect(listCheckpoints(copy)).toEqual({
      complete: [],
      damaged: [
        {
          step: 4,
          problem: expect.stringMatching(/^model\.safetensors has 100 bytes, manifest\.json says \d+$/),
        },
        { step: 8, problem: expect.stringMatching(/^config\.json is missing/) },
      ],
    });
  });

  it('recovers the complete copy an interrupted re-save left aside', () => {
    const copy = join(root, 'ck-resave');
    cpSync(runDir, copy, { recursive: true });
    const root8 = join(copy, 'checkpoints');
    // the crash between "move the old copy aside" and "rename the new one in"
    cpSync(checkpointDir(copy, 8), join(root8, '.step-8.old-4242'), { recursive: true });
    rmSync(checkpointDir(copy, 8), { recursive: true });
    mkdirSync(join(root8, '.step-4.tmp-4243')); // an unfinished write: removed
    const notes: string[] = [];
    recoverCheckpoints(copy, (l) => notes.push(l));
    expect(notes).toEqual([
      `${checkpointDir(copy, 8)}: restored from the complete copy .step-8.old-4242 left by an interrupted save`,
    ]);
    expect(completeCheckpoints(copy)).toEqual([4, 8]);
    expect(readdirSync(root8).sort()).toEqual(['step-4', 'step-8']);
  });

  it('a damaged newest checkpoint falls back to the previous one, and the run still matches', async () => {
    // same size, corrupt content: the manifest cannot see it; loading (the finite check) does
    const weights = join(checkpointDir(runDir, 8), 'model.safetensors');
    const bytes = readFileSync(weights);
    bytes.fill(0xff, bytes.length - 64);
    writeFileSync(weights, bytes);
    appendFileSync(join(runDir, 'metrics.jsonl'), '{"step":9,"loss":'); // and a torn tail
    const { lines, progress } = recorder();
    await runTraining(base, { resume: true, progress });
    const text = lines.join('');
    expect(text).toMatch(
      /step-8 cannot be resumed from \(.*model\.safetensors: tensor '.*' is not finite: value NaN.*\); falling back to step-4/,
    );
    expect(text).toMatch(/resumed from .*step-4 at step 4/);
    expect(metrics(runDir)).toEqual(metrics(full.runDir));
  });

  it('a failed save (file size limit) removes its partial directory and names the checkpoint', () => {
    const cli = resolve(import.meta.dirname, '../../dist/cli.js');
    if (!existsSync(cli))
      execFileSync('pnpm', ['run', 'build'], { cwd: resolve(import.meta.dirname, '../..'), stdio: 'pipe' });
    const out = join(root, 'fsize');
    // 120 KB per file: config and metrics fit, model.safetensors of the first checkpoint does not
    const result = spawnSync(
      'bash',
      [
        '-c',
        `ulimit -f 120; exec "${process.execPath}" "${cli}" train --data "${data}" --out "${out}" --name tiny --max-steps 4`,
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(result.status).toBe(1);
    const error = result.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('grin: '));
    expect(error).toHaveLength(1);
    expect(error[0]).toMatch(
      /^grin: checkpoint .*step-4: writing failed \(.*EFBIG.*\); the partial directory was removed; no complete checkpoint exists yet$/,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(join(out, 'tiny', 'checkpoints'))).toEqual([]);
  });
});
