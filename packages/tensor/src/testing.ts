// Test helpers shared by every package: one closeness check, a finite-difference gradient
// check and a leak check. Framework-free (they throw), so any test runner can use them.
// Test: cd packages/tensor && npx vitest run src/testing

import { noGrad } from './autograd/mode.js';
import { liveStorages } from './core/memory.js';
import { formatShape } from './core/shape.js';
import { Tensor } from './core/tensor.js';
import { mul, sum, tensor } from './ops/index.js';

export interface Tolerance {
  atol?: number;
  rtol?: number;
}

type Values = Tensor | ArrayLike<number> | number;

function flat(v: Values): { data: ArrayLike<number>; shape?: readonly number[] } {
  if (v instanceof Tensor) return { data: v.toArray() as ArrayLike<number>, shape: v.shape };
  if (typeof v === 'number') return { data: [v] };
  return { data: v };
}

/** Throws unless |actual - expected| <= atol + rtol * |expected| everywhere (NaN matches NaN). */
export function expectAllClose(
  actual: Values,
  expected: Values,
  { atol = 1e-6, rtol = 1e-5 }: Tolerance = {},
  label = 'values',
): void {
  const a = flat(actual);
  const e = flat(expected);
  if (a.shape && e.shape && formatShape(a.shape) !== formatShape(e.shape)) {
    throw new Error(`${label}: shape ${formatShape(a.shape)} differs from expected ${formatShape(e.shape)}`);
  }
  if (a.data.length !== e.data.length)
    throw new Error(`${label}: ${a.data.length} values, expected ${e.data.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.data.length; i++) {
    const x = a.data[i]!;
    const y = e.data[i]!;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    const excess = Math.abs(x - y) - (atol + rtol * Math.abs(y));
    if (!(excess <= 0) && (worst === -1 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst !== -1) {
    throw new Error(
      `${label}: element ${worst} is ${a.data[worst]}, expected ${e.data[worst]} (atol ${atol}, rtol ${rtol}; ` +
        `max abs error ${maxAbsError(a.data, e.data).toExponential(3)})`,
    );
  }
}

export function maxAbsError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Checks the analytic gradient of fn against central finite differences. Inputs should be f64
 * CPU leaves with requiresGrad; the scalar checked is sum(fn(...) * w) for a fixed pseudo-random w.
 */
export function gradcheck(
  fn: (...inputs: Tensor[]) => Tensor,
  inputs: Tensor[],
  { eps = 1e-6, atol = 1e-6, rtol = 1e-4 }: Tolerance & { eps?: number } = {},
): void {
  // With nothing to differentiate the loop below compares nothing, and the check would pass.
  if (!inputs.some((x) => x.requiresGrad))
    throw new Error(
      `gradcheck: none of the ${inputs.length} inputs requires grad, so no gradient would be checked; create them with requiresGrad: true`,
    );
  const out = fn(...inputs);
  const weights = tensor(
    Float64Array.from({ length: out.size }, (_, i) => Math.sin(i * 1.7 + 0.3) + 1.25),
    {
      shape: [...out.shape],
      dtype: out.dtype,
    },
  );
  const objective = () =>
    noGrad(() => {
      const y = fn(...inputs);
      const s = sum(mul(y, weights)).item();
      y.dispose();
      return s;
    });
  for (const x of inputs) if (x.requiresGrad) x.grad = null;
  const loss = sum(mul(out, weights));
  loss.backward();
  inputs.forEach((x, k) => {
    if (!x.requiresGrad) return;
    if (x.dtype !== 'f64')
      throw new Error(`gradcheck: input ${k} is ${x.describe()}; use f64 for finite differences`);
    const data = x.storage.data as Float64Array;
    const numeric = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const at = elementOffset(x, i);
      const keep = data[at]!;
      data[at] = keep + eps;
      const plus = objective();
      data[at] = keep - eps;
      const minus = objective();
      data[at] = keep;
      numeric[i] = (plus - minus) / (2 * eps);
    }
    if (!x.grad) throw new Error(`gradcheck: input ${k} received no gradient`);
    expectAllClose(x.grad, numeric, { atol, rtol }, `gradient of input ${k} ${x.describe()}`);
  });
}

function elementOffset(x: Tensor, i: number): number {
  let rest = i;
  let at = x.offset;
  for (let d = x.rank - 1; d >= 0; d--) {
    const size = x.shape[d]!;
    at += (rest % size) * x.strides[d]!;
    rest = Math.floor(rest / size);
  }
  return at;
}

/** Runs fn and throws if it left more live storages behind than it returned. */
export function expectNoLeaks<T>(fn: () => T, allowed = 0): T {
  const before = liveStorages();
  const result = fn();
  const after = liveStorages();
  if (after - before > allowed) {
    throw new Error(`leak check: ${after - before} storages still live after the block (allowed ${allowed})`);
  }
  return result;
}
