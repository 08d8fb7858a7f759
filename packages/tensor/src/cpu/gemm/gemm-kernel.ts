// Emits the body of the WebAssembly SIMD GEMM macro-kernel (BLIS loop order: k blocks, L2 blocks of A
// rows, B panels, A micro-panels) with an MR x NR register-blocked micro-kernel, NR = 4 * nv f32x4 lanes.
// A is read in place (no packing: one splat load per row and k), either row-major ('rows', op(A) = A)
// or column-major ('cols', op(A) = A^T); B is packed by pack-b.ts as [N/NR panels][K][NR]; C is a dense
// padded [Mp][Np] block. Tested by gemm.test.ts against gemmRef.
// Test: cd packages/tensor && npx vitest run src/cpu/gemm
import {
  type Bytes,
  blockVoid,
  f32Const,
  i32Const,
  memarg,
  op,
  simd,
  simdOp,
  type,
  v128Zero,
} from './wasm-encoder.js';

export interface KernelShape {
  mr: number; // rows of the micro-tile
  nv: number; // f32x4 vectors per micro-tile row (NR = 4 * nv)
  kc: number; // K block: one packed B panel (kc x NR) should stay in L1
  mcPanels: number; // micro-panels of A per L2 block (mcPanels * mr rows x kc)
  unroll: number; // k-loop unroll of the micro-kernel
}

/** Parameters of every gemm_* function; lda and ldc are in bytes. */
export const gemmParams = [
  'a',
  'lda',
  'b',
  'c',
  'ldc',
  'K',
  'i0',
  'i1',
  'j0',
  'j1',
  'alpha',
  'beta',
  'load',
] as const;
export const gemmParamTypes = gemmParams.map((name) =>
  name === 'alpha' || name === 'beta' ? type.f32 : type.i32,
);

/**
 * C[i-panels i0..i1, j-panels j0..j1] = alpha * op(A) * op(B) + (load ? beta * C : 0).
 * Returns the locals (after the params) and the body.
 */
export function emitGemmBody(
  shape: KernelShape,
  layout: 'rows' | 'cols',
  fma: boolean,
): { locals: number[]; body: Bytes } {
  const { mr, nv, kc: KC, mcPanels, unroll } = shape;
  const nr = 4 * nv;
  const [a, lda, b, c, ldc, K, i0, i1, j0, j1, alpha, beta, load] = gemmParams.map((_, index) => index);
  const locals: number[] = [];
  const local = (t: number) => gemmParams.length + locals.push(t) - 1;
  const [kc0, kc, ib, ibEnd, j, i, bptr, aptr, cptr, q, k, loadE, crow, p] = Array.from({ length: 14 }, () =>
    local(type.i32),
  );
  const rowPtr = Array.from({ length: layout === 'rows' ? mr : 0 }, () => local(type.i32));
  const betaE = local(type.f32);
  const acc = Array.from({ length: mr * nv }, () => local(type.v128));
  const bv = Array.from({ length: nv }, () => local(type.v128));
  const av = local(type.v128);
  const alphaV = local(type.v128);
  const betaV = local(type.v128);

  const get = (x: number): Bytes => [op.localGet, x];
  const set = (x: number): Bytes => [op.localSet, x];
  const addTo = (x: number, amount: Bytes): Bytes => [...get(x), ...amount, op.i32Add, ...set(x)];
  // target += x * y, fused when relaxed SIMD is available (vfmadd on x86 with FMA3).
  const madd = (x: Bytes, y: Bytes, target: number): Bytes =>
    fma
      ? [...x, ...y, ...get(target), ...simdOp(simd.f32x4RelaxedMadd), ...set(target)]
      : [...get(target), ...x, ...y, ...simdOp(simd.f32x4Mul), ...simdOp(simd.f32x4Add), ...set(target)];

  // One k step, B at constant offsets from q; A from row pointers (+u) or from p (then p += lda).
  const kStep = (u: number): Bytes => {
    const out: Bytes = [];
    for (let v = 0; v < nv; v++)
      out.push(...get(q), ...simdOp(simd.load), ...memarg(2, (u * nr + 4 * v) * 4), ...set(bv[v]!));
    for (let r = 0; r < mr; r++) {
      const splat =
        layout === 'rows'
          ? [...get(rowPtr[r]!), ...simdOp(simd.load32Splat), ...memarg(2, u * 4)]
          : [...get(p), ...simdOp(simd.load32Splat), ...memarg(2, r * 4)];
      out.push(...splat, ...set(av));
      for (let v = 0; v < nv; v++) out.push(...madd(get(av), get(bv[v]!), acc[r * nv + v]!));
    }
    if (layout === 'cols') out.push(...addTo(p, get(lda)));
    return out;
  };
  // A counted loop running `steps` k-steps per iteration; skipped when fewer than `steps` remain.
  const kLoop = (steps: number): Bytes => {
    const body: Bytes = [];
    for (let u = 0; u < steps; u++) body.push(...kStep(u));
    if (layout === 'rows') for (const ptr of rowPtr) body.push(...addTo(ptr, i32Const(steps * 4)));
    // biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
    return [
      op.block, blockVoid,
      ...get(k), ...i32Const(steps), op.i32LtS, op.brIf, 0,
      op.loop, blockVoid,
      ...body,
      ...addTo(q, i32Const(steps * nr * 4)),
      ...get(k), ...i32Const(steps), op.i32Sub, op.localTee, k,
      ...i32Const(steps), op.i32GeS, op.brIf, 0,
      op.end,
      op.end,
    ];
  };

  const micro: Bytes = [];
  for (const x of acc) micro.push(...v128Zero(), ...set(x));
  micro.push(...get(bptr), ...set(q), ...get(kc), ...set(k));
  if (layout === 'rows') {
    micro.push(...get(aptr), ...set(rowPtr[0]!));
    for (let r = 1; r < mr; r++)
      micro.push(...get(rowPtr[r - 1]!), ...get(lda), op.i32Add, ...set(rowPtr[r]!));
  } else {
    micro.push(...get(aptr), ...set(p));
  }
  if (unroll > 1) micro.push(...kLoop(unroll));
  micro.push(...kLoop(1));
  // Epilogue: acc = alpha * acc (+ beta * C), then store the whole (padded) tile.
  for (const x of acc) micro.push(...get(x), ...get(alphaV), ...simdOp(simd.f32x4Mul), ...set(x));
  micro.push(...get(loadE), op.if, blockVoid);
  micro.push(...get(betaE), ...simdOp(simd.f32x4Splat), ...set(betaV), ...get(cptr), ...set(crow));
  for (let r = 0; r < mr; r++) {
    for (let v = 0; v < nv; v++) {
      micro.push(
        ...madd(get(betaV), [...get(crow), ...simdOp(simd.load), ...memarg(2, 16 * v)], acc[r * nv + v]!),
      );
    }
    micro.push(...addTo(crow, get(ldc)));
  }
  micro.push(op.end, ...get(cptr), ...set(crow));
  for (let r = 0; r < mr; r++) {
    for (let v = 0; v < nv; v++)
      micro.push(...get(crow), ...get(acc[r * nv + v]!), ...simdOp(simd.store), ...memarg(2, 16 * v));
    if (r < mr - 1) micro.push(...addTo(crow, get(ldc)));
  }

  // Address of A at (row i*mr, column kc0) of op(A).
  // biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
  const aAddress: Bytes =
    layout === 'rows'
      ? [...get(a), ...get(i), ...i32Const(mr), op.i32Mul, ...get(lda), op.i32Mul, op.i32Add, ...get(kc0), ...i32Const(4), op.i32Mul, op.i32Add]
      : [...get(a), ...get(kc0), ...get(lda), op.i32Mul, op.i32Add, ...get(i), ...i32Const(mr * 4), op.i32Mul, op.i32Add];

  // biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
  const body: Bytes = [
    // Empty ranges do nothing; K == 0 is handled by the caller (C = beta * C).
    ...get(i0), ...get(i1), op.i32GeS, ...get(j0), ...get(j1), op.i32GeS, op.i32Or,
    ...get(K), ...i32Const(1), op.i32LtS, op.i32Or,
    op.if, blockVoid, op.return, op.end,
    ...get(alpha), ...simdOp(simd.f32x4Splat), ...set(alphaV),
    ...i32Const(0), ...set(kc0),
    op.loop, blockVoid, // k blocks
    ...get(K), ...get(kc0), op.i32Sub, op.localTee, kc, ...i32Const(KC), op.i32GtS, op.if, blockVoid,
    ...i32Const(KC), ...set(kc), op.end,
    // Only the first k block applies beta; later ones accumulate into C.
    ...get(load), ...i32Const(1), ...get(kc0), op.i32Eqz, op.select, ...set(loadE),
    ...get(beta), ...f32Const(1), ...get(kc0), op.i32Eqz, op.select, ...set(betaE),
    ...get(i0), ...set(ib),
    op.loop, blockVoid, // L2 blocks of A micro-panels
    ...get(ib), ...i32Const(mcPanels), op.i32Add, ...set(ibEnd),
    ...get(ibEnd), ...get(i1), op.i32GtS, op.if, blockVoid, ...get(i1), ...set(ibEnd), op.end,
    ...get(j0), ...set(j),
    op.loop, blockVoid, // B panels
    ...get(b), ...get(j), ...get(K), op.i32Mul, ...get(kc0), op.i32Add, ...i32Const(nr * 4), op.i32Mul, op.i32Add, ...set(bptr),
    ...get(ib), ...set(i),
    op.loop, blockVoid, // A micro-panels
    ...aAddress, ...set(aptr),
    ...get(c), ...get(i), ...i32Const(mr), op.i32Mul, ...get(ldc), op.i32Mul, op.i32Add,
    ...get(j), ...i32Const(nr * 4), op.i32Mul, op.i32Add, ...set(cptr),
    ...micro,
    ...addTo(i, i32Const(1)), ...get(i), ...get(ibEnd), op.i32LtS, op.brIf, 0,
    op.end,
    ...addTo(j, i32Const(1)), ...get(j), ...get(j1), op.i32LtS, op.brIf, 0,
    op.end,
    ...get(ibEnd), ...set(ib), ...get(ib), ...get(i1), op.i32LtS, op.brIf, 0,
    op.end,
    ...addTo(kc0, i32Const(KC)), ...get(kc0), ...get(K), op.i32LtS, op.brIf, 0,
    op.end,
  ];
  return { locals, body };
}
