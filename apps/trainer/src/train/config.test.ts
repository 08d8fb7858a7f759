// The training config: defaults, files (JSON and YAML), flags over files, and the errors that
// bad values get (each naming the source, the field and what is allowed).
// Run: cd apps/trainer && npx vitest run src/train/config.test.ts
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../commands/train.js';
import { defaultTrainConfig, mergeConfig, validateConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'grin-config-'));

describe('train config', () => {
  it('the embedded default is valid and sized for 2 CPU cores', () => {
    expect(() => validateConfig(defaultTrainConfig)).not.toThrow();
    expect(defaultTrainConfig.model.numLayers).toBe(4);
    expect(defaultTrainConfig.model.router).toBe('sparsemixer-v2');
    expect(defaultTrainConfig.optim.lbMode).toBe('global');
  });

  it('reads JSON and YAML files; flags win over the file', () => {
    writeFileSync(
      join(dir, 'a.json'),
      JSON.stringify({ optim: { steps: 7, lr: 0.01 }, model: { numExperts: 4 } }),
    );
    writeFileSync(join(dir, 'b.yaml'), 'optim:\n  steps: 9\nrun:\n  seed: 5\n');
    const a = resolveConfig({ config: join(dir, 'a.json'), 'max-steps': 11 });
    expect(a.optim.steps).toBe(11);
    expect(a.optim.lr).toBe(0.01);
    expect(a.model.numExperts).toBe(4);
    const b = resolveConfig({
      config: join(dir, 'b.yaml'),
      router: 'gshard-top2',
      'lb-mode': 'local',
      'lb-alpha': 0.1,
      seed: 3,
    });
    expect([b.optim.steps, b.run.seed, b.model.router, b.optim.lbMode, b.optim.lbAlpha]).toEqual([
      9,
      3,
      'gshard-top2',
      'local',
      0.1,
    ]);
  });

  it.each([
    [{ optim: { steps: 0 } }, /optim.steps \(0\) must be >= 1/],
    [{ optim: { lr: 'fast' } }, /optim.lr \("fast"\) must be a number/],
    [{ model: { numExpert: 4 } }, /unknown field 'model.numExpert'; valid: model.hiddenSize/],
    [{ modle: {} }, /unknown section 'modle'/],
    [{ optim: { lbMode: 'galactic' } }, /optim.lbMode \("galactic"\) must be one of local, global/],
    [{ optim: { moments: 'f16' } }, /optim.moments \("f16"\) must be one of f32, bf16/],
    [{ optim: { overlap: 'on' } }, /optim.overlap \("on"\) must be one of auto, off/],
    [{ data: { seqLen: 1.5 } }, /data.seqLen \(1.5\) must be a whole number/],
  ])('rejects %j', (patch, message) => {
    expect(() => mergeConfig(defaultTrainConfig, patch, 'x.json')).toThrow(message);
  });

  it('checks rules across fields', () => {
    const bad = (patch: object) => () =>
      validateConfig(mergeConfig(defaultTrainConfig, patch, 'x.json'), 'x.json');
    expect(bad({ model: { numHeads: 5 } })).toThrow(
      /x.json: model.numHeads \(5\) must divide model.hiddenSize \(128\)/,
    );
    expect(bad({ model: { numKvHeads: 3 } })).toThrow(
      /model.numKvHeads \(3\) must divide model.numHeads \(4\)/,
    );
    expect(bad({ model: { topK: 9 } })).toThrow(/model.topK \(9\) must be <= model.numExperts \(8\)/);
    expect(bad({ model: { router: 'nope' } })).toThrow(
      /model.router 'nope' is unknown; valid routers: sparsemixer-v2/,
    );
    expect(bad({ data: { source: 'file' } })).toThrow(/data.file must name a file/);
  });

  it('names the file when it cannot be read or parsed', () => {
    writeFileSync(join(dir, 'broken.json'), '{ "optim": ');
    expect(() => resolveConfig({ config: join(dir, 'broken.json') })).toThrow(/broken.json: not valid JSON/);
    expect(() => resolveConfig({ config: join(dir, 'missing.yaml') })).toThrow(
      /missing.yaml: cannot read the config file \(ENOENT\)/,
    );
    expect(() => resolveConfig({ router: 'top9' })).toThrow(/model.router 'top9' is unknown/);
  });

  it('leaves the config alone for --dp, --pp and --tp (the layout is checked by layoutProblems)', () => {
    expect(resolveConfig({ dp: 2 })).toEqual(resolveConfig({}));
    expect(resolveConfig({ dp: 2, pp: 2 })).toEqual(resolveConfig({}));
    expect(resolveConfig({ dp: 2, tp: 2 })).toEqual(resolveConfig({}));
  });
});
