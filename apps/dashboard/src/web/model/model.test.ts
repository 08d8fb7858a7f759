// The in-page model path on the fixture checkpoint: weights read from bytes by @grin-moe/tensor's
// parseSafetensorsBytes, the traced picks agree with what GrinModel.forward counts per layer and
// with eval's tokenRouting, and the gpu.js 'webgl' device (gpu.js 'cpu' mode stands in for WebGL in
// Node) routes identically. Run: cd apps/dashboard && npx vitest run src/web/model
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { idsTensor, loadModel, loadTokenizer } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import { GPU } from 'gpu.js';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../server.js';
import { buildModel, routeTokens } from './route.js';
import { type GpuLike, registerWebglBackend } from './webgl.js';

const checkpoint = join(packageRoot, 'fixtures', 'runs', 'tiny', 'checkpoints', 'step-16');
const bytes = readFileSync(join(checkpoint, 'model.safetensors'));
const weights = () => T.parseSafetensorsBytes(new Uint8Array(bytes), 'step-16/model.safetensors').tensors;
const configJson = JSON.parse(readFileSync(join(checkpoint, 'config.json'), 'utf8'));
const ids = loadTokenizer(checkpoint).encode('the mayor calls the council. an atom moves the field.');

describe('in-page model', () => {
  it('names a truncated file and a missing parameter', () => {
    expect(() => T.parseSafetensorsBytes(new Uint8Array(bytes).subarray(0, 200), 'x.safetensors')).toThrow(
      /^x\.safetensors: header length \d+ runs past the end of the 200-byte file/,
    );
    const partial = weights();
    partial.delete('lm_head.weight');
    expect(() => buildModel(configJson, partial, 'cpu', 'x.safetensors')).toThrow(
      /^x\.safetensors: parameter 'lm_head\.weight' \[\d+,\d+\] is missing/,
    );
  });

  it('traces, per token and layer, the picks GrinModel.forward counts', () => {
    const model = buildModel(configJson, weights());
    const routed = routeTokens(model, ids);
    expect(routed).toHaveLength(ids.length);
    const reference = loadModel(checkpoint).eval();
    const { balance, logits_BSV } = T.noGrad(() => reference.forward(idsTensor([ids]), { training: false }));
    // the weights read from bytes are the file's, bit for bit
    const ours = T.noGrad(() => model.forward(idsTensor([ids]), { training: false }).logits_BSV);
    expect(ours.toArray()).toEqual(logits_BSV.toArray());
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
    const tensors = weights();
    const onCpu = routeTokens(buildModel(configJson, tensors, 'cpu'), ids);
    const before = status.stats.gpu;
    const onWebgl = routeTokens(buildModel(configJson, tensors, 'webgl'), ids);
    expect(status.stats.gpu).toBeGreaterThan(before);
    expect(onWebgl.map((t) => t.experts)).toEqual(onCpu.map((t) => t.experts));
    onWebgl.forEach((t, i) =>
      t.weights.flat().forEach((w, j) => expect(w).toBeCloseTo(onCpu[i]!.weights.flat()[j]!, 4)),
    );
  });
});
