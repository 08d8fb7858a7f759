// CPU kernels for draws at an explicit Philox reservation: `random` (uniform / normal / exponential)
// and `random_scale` (x times a per-element uniform, the MoE input jitter). They replay the
// Generator's own stream from (key, counter), so a device backend's kernel is tested against them.
// Test: cd packages/tensor && npx vitest run src/ops/random
import { registerKernel } from '../core/registry.js';
import type { Tensor } from '../core/tensor.js';
import { allocate } from '../ops/dispatch.js';
import { Generator, PHILOX_ALGORITHM } from '../random/generator.js';
import { dense, type FloatArray } from './backend.js';

/** A generator standing at block `counter` of stream `key` (both as u32 pairs, low word first). */
export function generatorAt(key: [number, number], counter: [number, number]): Generator {
  const join = ([low, high]: [number, number]) => ((BigInt(high) << 32n) | BigInt(low)).toString();
  return Generator.fromState({ algorithm: PHILOX_ALGORITHM, key: join(key), counter: join(counter) });
}

registerKernel('random', 'cpu', (_inputs, { shape, dtype, distribution, a, b, key, counter }, device) => {
  if (dtype !== 'f32' && dtype !== 'f64')
    throw new TypeError(`random (cpu): dtype must be f32 or f64, got ${dtype}`);
  const out = allocate(shape, dtype, device);
  const values = dense<FloatArray>(out);
  const generator = generatorAt(key, counter);
  if (distribution === 'uniform') generator.fillUniform(values, a, b);
  else if (distribution === 'normal') generator.fillNormal(values, a, b);
  else if (distribution === 'exponential') generator.fillExponential(values, a);
  else throw new RangeError(`random (cpu): unknown distribution '${distribution as string}'`);
  return [out];
});

registerKernel('random_scale', 'cpu', ([x], { low, high, key, counter }) => {
  const input = x as Tensor;
  if (input.dtype !== 'f32' && input.dtype !== 'f64')
    throw new TypeError(`random_scale (cpu): x must be f32 or f64, got ${input.describe()}`);
  const out = allocate(input.shape, input.dtype, input.device);
  const values = dense<FloatArray>(out);
  generatorAt(key, counter).fillUniform(values, low, high);
  const source = dense<FloatArray>(input);
  for (let i = 0; i < values.length; i++) values[i] = source[i]! * values[i]!;
  return [out];
});
