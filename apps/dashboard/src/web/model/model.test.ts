// The in-page model path on the fixture checkpoint: the ArrayBuffer safetensors reader agrees with
// the tensor package's file reader, the routing loop picks what GrinModel.forward counts per layer,
// and the gpu.js 'webgl' device (gpu.js 'cpu' mode stands in for WebGL in Node) routes identically.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { idsTensor, loadModel, loadTokenizer } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import { GPU } from 'gpu.js';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../server.js';
import { buildModel, routeTokens } from './route.js';
import { parseSafetensors } from './safetensors.js';
import { type GpuLike, registerWebglBackend } from './webgl.js';

const checkpoint = join(packageRoot, 'fixtures', 'runs', 'tiny', 'checkpoints', 'step-16');
const bytes = readFileSync(join(checkpoint, 'model.safetensors'));
const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
const configJson = JSON.parse(readFileSync(join(checkpoint, 'config.json'), 'utf8'));
const ids = loadTokenizer(checkpoint).encode('the mayor calls the council. an atom moves the field.');

describe('in-page model', () => {
  it('reads safetensors from an ArrayBuffer like the file reader', () => {
    const ours = parseSafetensors(buffer);
    const reference = T.loadTensors(join(checkpoint, 'model.safetensors'));
    expect([...ours.keys()].sort()).toEqual(Object.keys(reference).sort());
    for (const [name, t] of Object.entries(reference)) {
      expect(ours.get(name)!.shape).toEqual(t.shape);
      expect(ours.get(name)!.data).toEqual(t.toArray());
      t.dispose();
    }
  });

  it('rejects a truncated file and a header that overruns it, naming the problem', () => {
    expect(() => parseSafetensors(buffer.slice(0, 4))).toThrow(/too short/);
    expect(() => parseSafetensors(buffer.slice(0, 200))).toThrow(/runs past the end|data_offsets/);
  });

  it('picks, per layer, the experts GrinModel.forward counts', () => {
    const model = buildModel(configJson, parseSafetensors(buffer));
    const routed = routeTokens(model, ids);
    expect(routed).toHaveLength(ids.length);
    const reference = loadModel(checkpoint).eval();
    const { balance } = T.noGrad(() => reference.forward(idsTensor([ids]), { training: false }));
    balance.forEach((stats, layer) => {
      const counts = new Array<number>(model.config.numLocalExperts).fill(0);
      for (const token of routed) for (const e of token.experts[layer]!) counts[e]!++;
      expect(counts).toEqual(Array.from(stats.counts_E.toArray()));
      for (const token of routed)
        expect(new Set(token.experts[layer]).size).toBe(model.config.numExpertsPerTok);
    });
  });

  it("routes identically on the gpu.js 'webgl' device", () => {
    const status = registerWebglBackend(new GPU({ mode: 'cpu' }) as unknown as GpuLike, 1);
    expect(status.device).toBe('webgl');
    const weights = parseSafetensors(buffer);
    const onCpu = routeTokens(buildModel(configJson, weights, 'cpu'), ids);
    const before = status.stats.gpu;
    const onWebgl = routeTokens(buildModel(configJson, weights, 'webgl'), ids);
    expect(status.stats.gpu).toBeGreaterThan(before);
    expect(onWebgl.map((t) => t.experts)).toEqual(onCpu.map((t) => t.experts));
    onWebgl.forEach((t, i) =>
      t.weights.flat().forEach((w, j) => expect(w).toBeCloseTo(onCpu[i]!.weights.flat()[j]!, 4)),
    );
  });
});
