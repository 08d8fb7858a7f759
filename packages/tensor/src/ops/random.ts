// Random tensors drawn from the seeded Philox stream (random/generator.ts documents it).
// Every draw reserves its blocks of the generator and runs the `random` kernel of the tensor's
// device from that (key, counter): the CPU kernel replays the Generator, and a device backend
// draws in place (kernels-cuda), giving the same values, so nothing is drawn on the host and
// uploaded. randomScale is the fused x * U(low, high) of the MoE input jitter.
// Test: cd packages/tensor && npx vitest run src/ops/random

import { backendOf } from '../core/backend.js';
import type { DType } from '../core/dtype.js';
import type { OpAttrs } from '../core/op-types.js';
import { hasKernel } from '../core/registry.js';
import { numel } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { Generator } from '../random/generator.js';
import { defaultGenerator } from '../random/global.js';
import { tensor } from './creation.js';
import { runKernel, runOp } from './dispatch.js';

export interface RandomOptions {
  dtype?: 'f32' | 'f64';
  device?: string;
  generator?: Generator;
  requiresGrad?: boolean;
}

type Distribution = OpAttrs['random']['distribution'];

/** Philox blocks one draw of n values consumes (the Generator's words-per-value table). */
export function blocksFor(distribution: Distribution, dtype: 'f32' | 'f64', n: number): number {
  const wordsPerValue = dtype === 'f64' ? 2 : 1;
  const words = distribution === 'normal' ? 2 * wordsPerValue * Math.ceil(n / 2) : wordsPerValue * n;
  return Math.ceil(words / 4);
}

function draw(
  shape: number[],
  options: RandomOptions,
  distribution: Distribution,
  a: number,
  b: number,
  host: (g: Generator, n: number, dtype: 'f32' | 'f64') => Float32Array | Float64Array,
): Tensor {
  const dtype = options.dtype ?? 'f32';
  const device = options.device ?? 'cpu';
  const generator = options.generator ?? defaultGenerator();
  const n = numel(shape);
  if (dtype !== 'f32' && dtype !== 'f64')
    throw new TypeError(`random: dtype must be 'f32' or 'f64', got ${JSON.stringify(dtype)}`);
  if (!hasKernel('random', backendOf(device).name)) {
    // a backend without a random kernel gets host draws, uploaded once
    const data = host(generator, n, dtype);
    return tensor(data, { shape, dtype, device, requiresGrad: options.requiresGrad });
  }
  host(new Generator(0), 0, dtype); // validates the parameters as the host draw would, reserving nothing
  const { key, counter } = generator.reserveBlocks(blocksFor(distribution, dtype, n));
  const attrs = { shape: [...shape], dtype: dtype as DType, distribution, a, b, key, counter };
  const out = runKernel('random', device, [], attrs)[0]!;
  return options.requiresGrad ? out.setRequiresGrad() : out;
}

/** Uniform in [low, high). */
export function rand(shape: number[], options: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  const low = options.low ?? 0;
  const high = options.high ?? 1;
  return draw(shape, options, 'uniform', low, high, (g, n, d) => g.uniform(n, d, low, high));
}

export function randn(
  shape: number[],
  options: RandomOptions & { mean?: number; std?: number } = {},
): Tensor {
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  return draw(shape, options, 'normal', mean, std, (g, n, d) => g.normal(n, d, mean, std));
}

/** Exp(rate) draws, -log(1 - U) / rate. */
export function randExponential(shape: number[], options: RandomOptions & { rate?: number } = {}): Tensor {
  const rate = options.rate ?? 1;
  return draw(shape, options, 'exponential', rate, 0, (g, n, d) => g.exponential(n, d, rate));
}

export function randGumbel(shape: number[], options: RandomOptions = {}): Tensor {
  const dtype = options.dtype ?? 'f32';
  const data = (options.generator ?? defaultGenerator()).gumbel(numel(shape), dtype);
  return tensor(data, { shape, dtype, device: options.device, requiresGrad: options.requiresGrad });
}

/** A bool tensor, true with probability p. */
export function bernoulli(
  shape: number[],
  p: number,
  options: { device?: string; generator?: Generator } = {},
): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`bernoulli: p must be in [0, 1], got ${p}`);
  const mask = (options.generator ?? defaultGenerator()).bernoulli(numel(shape), p);
  return tensor(mask, { shape, dtype: 'bool', device: options.device });
}

/**
 * x * U(low, high) per element, as mul(x, rand(x.shape, {low, high})) gives (f32 draws, f64 for
 * f64 x, rounded to bf16 for bf16 x) from the same stream position, but fused: the draws live only
 * inside the kernel, and the backward regenerates them from the saved (key, counter).
 */
export function randomScale(
  x: Tensor,
  options: { low: number; high: number; generator?: Generator },
): Tensor {
  const { low, high } = options;
  if (!(Number.isFinite(low) && Number.isFinite(high) && low < high))
    throw new RangeError(`randomScale: need finite low < high, got low=${low}, high=${high}`);
  const drawDType = x.dtype === 'f64' ? 'f64' : 'f32';
  const generator = options.generator ?? defaultGenerator();
  const { key, counter } = generator.reserveBlocks(blocksFor('uniform', drawDType, x.size));
  return runOp('random_scale', [x], { low, high, key, counter })[0]!;
}
