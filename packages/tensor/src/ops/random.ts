// Random tensors drawn from the seeded Philox stream (random/generator.ts documents it).
// Draws happen on the host and are uploaded; a device backend may later draw in place from
// the same (key, counter) reservation.

import { numel } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import type { Generator } from '../random/generator.js';
import { defaultGenerator } from '../random/global.js';
import { tensor } from './creation.js';

export interface RandomOptions {
  dtype?: 'f32' | 'f64';
  device?: string;
  generator?: Generator;
  requiresGrad?: boolean;
}

function draw(
  shape: number[],
  options: RandomOptions,
  fill: (g: Generator, n: number, dtype: 'f32' | 'f64') => Float32Array | Float64Array,
): Tensor {
  const dtype = options.dtype ?? 'f32';
  const data = fill(options.generator ?? defaultGenerator(), numel(shape), dtype);
  return tensor(data, { shape, dtype, device: options.device, requiresGrad: options.requiresGrad });
}

/** Uniform in [low, high). */
export function rand(shape: number[], options: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  return draw(shape, options, (g, n, d) => g.uniform(n, d, options.low ?? 0, options.high ?? 1));
}

export function randn(
  shape: number[],
  options: RandomOptions & { mean?: number; std?: number } = {},
): Tensor {
  return draw(shape, options, (g, n, d) => g.normal(n, d, options.mean ?? 0, options.std ?? 1));
}

/** Exp(rate) draws, -log(1 - U) / rate. */
export function randExponential(shape: number[], options: RandomOptions & { rate?: number } = {}): Tensor {
  return draw(shape, options, (g, n, d) => g.exponential(n, d, options.rate ?? 1));
}

export function randGumbel(shape: number[], options: RandomOptions = {}): Tensor {
  return draw(shape, options, (g, n, d) => g.gumbel(n, d));
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
