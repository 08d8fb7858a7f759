// gemmF32 / gemmBatchedF32 against the plain reference gemmRef over a table of shapes, transposes,
// scalars, offsets and strides, on one thread and on two (worker) threads.
// Run: cd packages/tensor && npx vitest run src/cpu/gemm
import { afterAll, describe, expect, it } from 'vitest';
import { gemmBatchedF32, gemmF32, gemmThreads, setGemmThreads } from './gemm.js';
import { gemmEngine } from './gemm-engine.js';
import { gemmRef } from './gemm-ref.js';
import { lastThreadsUsed } from './gemm-run.js';

// Deterministic values in [-1, 1) so failures reproduce.
function random(length: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

interface Case {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  pad?: number; // extra elements per row (lda, ldb, ldc above the row length) and in front (offsets)
}

// |ours - ref| <= 1e-4 * sum_k |alpha a b| + |beta c| per element: f32 rounding grows with that sum.
function expectClose(ours: Float32Array, ref: Float32Array, scale: Float64Array, label: string): void {
  for (let index = 0; index < ours.length; index++) {
    const diff = Math.abs(ours[index]! - ref[index]!);
    if (!(diff <= 1e-4 * scale[index]! + 1e-30)) {
      expect.fail(
        `${label}: element ${index}: ours ${ours[index]} ref ${ref[index]} (tolerance ${1e-4 * scale[index]!})`,
      );
    }
  }
}

function checkCase(c: Case, seed: number): void {
  const { M, N, K, transA = false, transB = false, alpha = 1, beta = 0, pad = 0 } = c;
  const lda = Math.max(1, transA ? M : K) + pad;
  const ldb = Math.max(1, transB ? K : N) + pad;
  const ldc = N + pad;
  const A = random(pad + (transA ? K : M) * lda, seed);
  const B = random(pad + (transB ? N : K) * ldb, seed + 1);
  const C0 = random(pad + M * ldc, seed + 2);
  const ours = C0.slice();
  const ref = C0.slice();
  gemmF32(transA, transB, M, N, K, alpha, A, pad, lda, B, pad, ldb, beta, ours, pad, ldc);
  gemmRef(transA, transB, M, N, K, alpha, A, pad, lda, B, pad, ldb, beta, ref, pad, ldc);
  // The tolerance scale: the same product with absolute values.
  const scale = new Float64Array(ref.length);
  const abs = (x: Float32Array) => x.map(Math.abs);
  const scaleF32 = new Float32Array(ref.length);
  gemmRef(
    transA,
    transB,
    M,
    N,
    K,
    Math.abs(alpha),
    abs(A),
    pad,
    lda,
    abs(B),
    pad,
    ldb,
    0,
    scaleF32,
    pad,
    ldc,
  );
  for (let index = 0; index < ref.length; index++)
    scale[index] = scaleF32[index]! + Math.abs(beta * C0[index]!) + 1e-6;
  expectClose(ours, ref, scale, JSON.stringify(c));
  // Elements outside the M x N window (padding between rows, the offset) must be untouched.
  for (let index = 0; index < pad; index++) expect(ours[index]).toBe(C0[index]);
  for (let i = 0; i < M; i++)
    for (let j = N; j < ldc; j++) expect(ours[pad + i * ldc + j]).toBe(C0[pad + i * ldc + j]);
}

const transposes = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

const cases: Case[] = [
  { M: 1, N: 1, K: 1 },
  { M: 17, N: 33, K: 65 },
  { M: 3, N: 5, K: 7 },
  { M: 64, N: 64, K: 64 },
  { M: 100, N: 12, K: 300 },
  { M: 513, N: 7, K: 33 }, // tall, thin
  { M: 5, N: 600, K: 40 }, // short, wide: split over columns
  { M: 129, N: 131, K: 600 }, // several k blocks
  { M: 33, N: 29, K: 70, alpha: -0.5, beta: 0.75 },
  { M: 70, N: 90, K: 300, alpha: 2, beta: 1 },
  { M: 20, N: 24, K: 16, beta: -1, pad: 5 },
  { M: 130, N: 75, K: 257, alpha: 0.25, beta: 0.5, pad: 3 },
  { M: 8, N: 8, K: 0, beta: 0.5 },
];

const initialThreads = gemmThreads();
afterAll(() => setGemmThreads(initialThreads));

describe.each([1, 2])('gemmF32 on %i thread(s)', (threads) => {
  it.each(transposes)('matches gemmRef (transA %s, transB %s)', (transA, transB) => {
    setGemmThreads(threads);
    for (const [index, c] of cases.entries()) checkCase({ ...c, transA, transB }, 10 * index + 1);
  });

  it('matches gemmRef for a product big enough to use every thread', () => {
    setGemmThreads(threads);
    checkCase({ M: 200, N: 190, K: 210, alpha: 1.5, beta: 0.5, pad: 2 }, 7);
    checkCase({ M: 200, N: 190, K: 210, transA: true, transB: true }, 8);
    expect(lastThreadsUsed).toBe(threads);
  });

  it('keeps working when the shared memory grows under running workers', () => {
    setGemmThreads(threads);
    const memory = gemmEngine().memory;
    const before = memory.buffer.byteLength;
    const n = Math.ceil(Math.sqrt(before / 4 / 2)) + 8; // A and B copies alone exceed the memory
    checkCase({ M: n, N: n + 5, K: n - 3, beta: 0.5 }, 11 + threads);
    expect(memory.buffer.byteLength).toBeGreaterThan(before);
    expect(lastThreadsUsed).toBe(threads);
  });

  it('gemmBatchedF32 matches gemmRef per batch', () => {
    setGemmThreads(threads);
    for (const [batch, M, N, K, transA, transB] of [
      [3, 70, 64, 48, false, true],
      [8, 33, 17, 65, true, false],
      [1, 90, 90, 90, false, false],
    ] as const) {
      const A = random(batch * M * K, 1);
      const B = random(batch * K * N, 2);
      const ours = random(batch * M * N, 3); // overwritten: beta is 0
      const ref = new Float32Array(batch * M * N);
      gemmBatchedF32(batch, transA, transB, M, N, K, A, M * K, B, K * N, ours, M * N);
      for (let b = 0; b < batch; b++) {
        gemmRef(
          transA,
          transB,
          M,
          N,
          K,
          1,
          A,
          b * M * K,
          transA ? M : K,
          B,
          b * K * N,
          transB ? K : N,
          0,
          ref,
          b * M * N,
          N,
        );
      }
      // Inputs are in [-1, 1), so |sum of K products| <= K bounds the rounding scale.
      const worst = ours.reduce((max, x, index) => Math.max(max, Math.abs(x - ref[index]!)), 0);
      expect(worst).toBeLessThanOrEqual(1e-4 * K);
    }
  });
});

describe('gemmF32 arguments', () => {
  it('ignores NaN in C when beta is 0', () => {
    const C = new Float32Array(4).fill(Number.NaN);
    gemmF32(false, false, 2, 2, 1, 1, Float32Array.of(1, 2), 0, 1, Float32Array.of(3, 4), 0, 2, 0, C, 0, 2);
    expect([...C]).toEqual([3, 4, 6, 8]);
  });

  it('rejects a leading dimension shorter than a row, naming it', () => {
    const x = new Float32Array(16);
    expect(() => gemmF32(false, false, 2, 2, 4, 1, x, 0, 3, x, 0, 2, 0, x, 0, 2)).toThrow(
      /lda \(3\) must be an integer >= 4/,
    );
  });

  it('rejects arrays too short for the shape', () => {
    const x = new Float32Array(3);
    expect(() => gemmF32(false, false, 2, 2, 2, 1, x, 0, 2, x, 0, 2, 0, x, 0, 2)).toThrow(
      /needs 4 elements, it has 3/,
    );
  });

  it('rejects thread counts outside 1..max', () => {
    expect(() => setGemmThreads(0)).toThrow(/expected an integer from 1/);
  });
});
