// Runs one or more same-shaped f32 products through the WebAssembly kernel: lays out the arena
// (task table, A and B copied in as stored, packed B, padded C), packs B, computes, copies C out.
// Work is split into task records so one dispatch covers a whole batch (gemm-pool.ts runs them).
// Tested by gemm.test.ts.
// Test: cd packages/tensor && npx vitest run src/cpu/gemm
import { gemmEngine } from './gemm-engine.js';
import { defaultShape, taskKind, taskWords } from './gemm-module.js';
import { canUseWorkers, controlBytes, gemmThreads, runSlices } from './gemm-pool.js';

export interface Product {
  A: Float32Array;
  offA: number;
  B: Float32Array;
  offB: number;
  C: Float32Array;
  offC: number;
}

export interface ProductShape {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  lda: number;
  ldb: number;
  ldc: number;
}

// Below this many multiply-adds per call, waking workers costs more than it saves.
const minFlopsPerThread = 64 ** 3;
const align = (bytes: number) => Math.ceil(bytes / 64) * 64;
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Threads the last call used (tests check that both paths run). */
export let lastThreadsUsed = 0;

export function runProducts(shape: ProductShape, products: Product[]): void {
  const { transA, transB, M, N, K, alpha, beta, lda, ldb, ldc } = shape;
  const engine = gemmEngine();
  const mr = defaultShape.mr;
  const nr = 4 * defaultShape.nv;
  const mPanels = Math.ceil(M / mr);
  const nPanels = Math.ceil(N / nr);
  const Mp = mPanels * mr;
  const Np = nPanels * nr;

  const work = M * N * K * products.length;
  const threads = canUseWorkers(engine)
    ? Math.max(1, Math.min(gemmThreads(), Math.floor(work / minFlopsPerThread)))
    : 1;
  // Split each product into `splits` parts so the task count is a multiple of the thread count.
  lastThreadsUsed = threads;
  const splits = threads / gcd(products.length, threads);
  const taskCount = products.length * splits;

  // Floats the kernel may read from A: whole micro-panels, so up to Mp rows (the tail is zeroed).
  const aCopied = transA ? (K - 1) * lda + M : (M - 1) * lda + K;
  const aRead = transA ? (K - 1) * lda + Mp : (Mp - 1) * lda + K;
  const bCopied = transB ? (N - 1) * ldb + K : (K - 1) * ldb + N;
  const sizes = {
    a: align(aRead * 4),
    b: align(bCopied * 4),
    packed: align(nPanels * K * nr * 4),
    c: align(Mp * Np * 4),
  };
  const perProduct = sizes.a + sizes.b + sizes.packed + sizes.c;
  const table = controlBytes;
  const arena = table + align(taskCount * taskWords * 4);
  engine.reserve(arena + products.length * perProduct);

  const f32 = engine.f32();
  const i32 = engine.i32();
  const bases = products.map((product, index) => {
    const a = arena + index * perProduct;
    const b = a + sizes.a;
    const packed = b + sizes.b;
    const c = packed + sizes.packed;
    f32.set(product.A.subarray(product.offA, product.offA + aCopied), a / 4);
    f32.fill(0, a / 4 + aCopied, a / 4 + aRead);
    f32.set(product.B.subarray(product.offB, product.offB + bCopied), b / 4);
    if (beta !== 0) {
      for (let i = 0; i < M; i++)
        f32.set(product.C.subarray(product.offC + i * ldc, product.offC + i * ldc + N), c / 4 + i * Np);
    }
    return { a, b, packed, c };
  });

  const slices = (): Array<[number, number]> =>
    Array.from({ length: threads }, (_, t) => [(t * taskCount) / threads, ((t + 1) * taskCount) / threads]);
  const part = (count: number, s: number): [number, number] => [
    Math.floor((s * count) / splits),
    Math.floor(((s + 1) * count) / splits),
  ];

  // Phase 1: pack B panels (all threads), since with a split over rows every thread reads all of B.
  let record = table / 4;
  for (const base of bases) {
    for (let s = 0; s < splits; s++, record += taskWords) {
      const [q0, q1] = part(nPanels, s);
      i32.set([taskKind.packB, base.b, ldb * 4, transB ? 1 : 0, K, N, base.packed, q0, q1], record);
    }
  }
  runSlices(engine, table, slices());

  // Phase 2: the products, split over row panels when there are enough of them, else over columns.
  const splitRows = mPanels >= nPanels || mPanels >= 4 * splits;
  record = table / 4;
  for (const base of bases) {
    for (let s = 0; s < splits; s++, record += taskWords) {
      const [i0, i1] = splitRows ? part(mPanels, s) : [0, mPanels];
      const [j0, j1] = splitRows ? [0, nPanels] : part(nPanels, s);
      const kind = transA ? taskKind.gemmCols : taskKind.gemmRows;
      i32.set(
        [kind, base.a, lda * 4, base.packed, base.c, Np * 4, K, i0, i1, j0, j1, 0, 0, beta !== 0 ? 1 : 0],
        record,
      );
      f32[record + 11] = alpha;
      f32[record + 12] = beta;
    }
  }
  runSlices(engine, table, slices());

  for (let index = 0; index < products.length; index++) {
    const { C, offC } = products[index]!;
    const c = bases[index]!.c / 4;
    if (ldc === N && Np === N) C.set(f32.subarray(c, c + M * N), offC);
    else for (let i = 0; i < M; i++) C.set(f32.subarray(c + i * Np, c + i * Np + N), offC + i * ldc);
  }
}
