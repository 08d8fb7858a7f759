// Framework-free GPU-vs-CPU checks shared by the vitest suites (tests/*.test.ts) and the node:test
// bundles for the device machine (tests/device/*.ts). A Case runs on cuda and on the CPU reference
// with the same random inputs and returns a note with the largest errors it saw.
import * as T from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';

export interface Case {
  name: string;
  /** Throws on a mismatch; returns a short note (largest errors) on success. */
  run(): string;
}

export type Dt = 'f32' | 'bf16';
export const gen = new T.Generator(20251129);

/** One input as an f32 (or i32/bool) CPU reference tensor and the same values on cuda (in dtype). */
export interface Pair {
  cpu: T.Tensor;
  cuda: T.Tensor;
}

export function bf16Round(values: Float32Array): Float32Array {
  return T.bf16BitsToF32Array(T.f32ArrayToBf16Bits(values));
}

/** Uploads host f32 values: the CPU copy holds them rounded to `dtype`, the cuda copy in `dtype`. */
export function pairFrom(values: Float32Array, shape: number[], dtype: Dt = 'f32'): Pair {
  if (dtype === 'f32') {
    return { cpu: T.tensor(values, { shape }), cuda: T.tensor(values, { shape, device: 'cuda' }) };
  }
  const bits = T.f32ArrayToBf16Bits(values);
  return {
    cpu: T.tensor(T.bf16BitsToF32Array(bits), { shape }),
    cuda: T.tensor(bits, { shape, dtype: 'bf16', device: 'cuda' }),
  };
}

export function randn(shape: number[], dtype: Dt = 'f32', scale = 1, shift = 0): Pair {
  const n = shape.reduce((a, d) => a * d, 1);
  const values = gen.normal(n) as Float32Array;
  for (let i = 0; i < n; i++) values[i] = values[i]! * scale + shift;
  return pairFrom(values, shape, dtype);
}

export function randint(shape: number[], low: number, high: number): Pair {
  const n = shape.reduce((a, d) => a * d, 1);
  const values = gen.randint(n, low, high);
  return { cpu: T.tensor(values, { shape }), cuda: T.tensor(values, { shape, device: 'cuda' }) };
}

export function randbool(shape: number[], p = 0.5): Pair {
  const n = shape.reduce((a, d) => a * d, 1);
  const values = gen.bernoulli(n, p);
  return {
    cpu: T.tensor(values, { shape, dtype: 'bool' }),
    cuda: T.tensor(values, { shape, dtype: 'bool', device: 'cuda' }),
  };
}

/** Values of any tensor as numbers (bf16 decoded). */
export function valuesOf(t: T.Tensor): Float32Array | Float64Array | Int32Array | Uint8Array {
  const raw = t.toArray();
  return t.dtype === 'bf16' ? T.bf16BitsToF32Array(raw as Uint16Array) : (raw as Float32Array);
}

export interface Tol {
  atol: number;
  rtol: number;
}
export const TOL: Record<string, Tol> = {
  f32: { atol: 1e-5, rtol: 1e-5 },
  bf16: { atol: 1e-2, rtol: 1.6e-2 },
  exact: { atol: 0, rtol: 0 },
};

/**
 * Compares a cuda result with the CPU reference (rounded to bf16 first when the cuda result is
 * bf16). Shapes must match. Returns "max abs e, max rel e".
 */
export function compare(label: string, actual: T.Tensor, expected: T.Tensor, tol?: Tol): string {
  if (actual.rank !== expected.rank || actual.shape.some((d, i) => d !== expected.shape[i]))
    throw new Error(`${label}: shape [${actual.shape}] differs from the reference [${expected.shape}]`);
  const a = valuesOf(actual);
  let e: ArrayLike<number> = valuesOf(expected);
  if (actual.dtype === 'bf16') e = bf16Round(Float32Array.from(e));
  const t = tol ?? (actual.dtype === 'bf16' ? TOL.bf16! : actual.dtype === 'f32' ? TOL.f32! : TOL.exact!);
  expectAllClose(a, e, t, label);
  let maxAbs = 0;
  let maxRel = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - e[i]!);
    if (!(d > 0)) continue;
    maxAbs = Math.max(maxAbs, d);
    maxRel = Math.max(maxRel, d / Math.max(Math.abs(e[i]!), 1e-30));
  }
  return `max abs ${maxAbs.toExponential(2)}, max rel ${maxRel.toExponential(2)}`;
}

/** Keeps the worst note of several comparisons (by max abs). */
export class Notes {
  private worst = '';
  private worstAbs = -1;
  add(note: string): void {
    const abs = Number(/max abs ([^,]+)/.exec(note)?.[1] ?? 0);
    if (abs > this.worstAbs) {
      this.worstAbs = abs;
      this.worst = note;
    }
  }
  toString(): string {
    return this.worst;
  }
}

/** Runs fn inside a scope so every tensor it makes is freed. */
export function scoped(fn: () => string): string {
  return T.tidy(() => fn());
}

export const DTYPES: Dt[] = ['f32', 'bf16'];

/** AdamW's hyperparameters at `step` for the kernel-level checks (tests and dev/adamw): GRIN's betas, a salt per step. */
export const adamwAttrs = (step: number) => ({
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  step,
  salt: 0x9e3779b9 + step,
});
