// Emits pack_b: copies op(B) (K x N, read from wasm memory with row stride ldb bytes; trans = B is
// stored N x K) into the panel layout the micro-kernel reads: [N/NR panels][K][NR], zero-padded.
// Panel range [q0, q1) lets threads pack disjoint parts. Tested by gemm.test.ts through gemmF32.
// Test: cd packages/tensor && npx vitest run src/cpu/gemm
import { type Bytes, blockVoid, i32Const, memarg, op, simd, simdOp, type } from './wasm-encoder.js';

export const packParams = ['src', 'ldb', 'trans', 'K', 'N', 'dst', 'q0', 'q1'] as const;
export const packParamTypes = packParams.map(() => type.i32);

export function emitPackBody(nv: number): { locals: number[]; body: Bytes } {
  const nr = 4 * nv;
  const [src, ldb, trans, K, N, dst, q0, q1] = packParams.map((_, index) => index);
  const locals: number[] = [];
  const local = (t: number) => packParams.length + locals.push(t) - 1;
  const [q, cols, k, col, s, d, panelBase] = Array.from({ length: 7 }, () => local(type.i32));

  const get = (x: number): Bytes => [op.localGet, x];
  const set = (x: number): Bytes => [op.localSet, x];
  const addTo = (x: number, amount: Bytes): Bytes => [...get(x), ...amount, op.i32Add, ...set(x)];
  // `for (x = 0; x < limit; x++) body`, skipped when limit <= 0.
  // biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
  const forLoop = (x: number, limit: Bytes, body: Bytes): Bytes => [
    ...i32Const(0), ...set(x),
    op.block, blockVoid,
    ...get(x), ...limit, op.i32GeS, op.brIf, 0,
    op.loop, blockVoid,
    ...body,
    ...addTo(x, i32Const(1)), ...get(x), ...limit, op.i32LtS, op.brIf, 0,
    op.end,
    op.end,
  ];
  const copyFloat: Bytes = [...get(d), ...get(s), op.f32Load, ...memarg(2, 0), op.f32Store, ...memarg(2, 0)];
  const zeroFloat: Bytes = [...get(d), op.f32Const, 0, 0, 0, 0, op.f32Store, ...memarg(2, 0)];

  // Not transposed: row k of the panel is NR contiguous floats of B's row k.
  const fullRow: Bytes = [];
  for (let v = 0; v < nv; v++)
    fullRow.push(
      ...get(d),
      ...get(s),
      ...simdOp(simd.load),
      ...memarg(2, 16 * v),
      ...simdOp(simd.store),
      ...memarg(2, 16 * v),
    );
  // biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
  const straight: Bytes = forLoop(k, get(K), [
    ...get(src), ...get(k), ...get(ldb), op.i32Mul, op.i32Add, ...get(q), ...i32Const(nr * 4), op.i32Mul, op.i32Add, ...set(s),
    ...get(panelBase), ...get(k), ...i32Const(nr * 4), op.i32Mul, op.i32Add, ...set(d),
    ...get(cols), ...i32Const(nr), op.i32Eq,
    op.if, blockVoid,
    ...fullRow,
    op.else,
    ...forLoop(col, i32Const(nr), [
      ...get(col), ...get(cols), op.i32LtS, op.if, blockVoid, ...copyFloat, op.else, ...zeroFloat, op.end,
      ...addTo(s, i32Const(4)), ...addTo(d, i32Const(4)),
    ]),
    op.end,
  ]);
  // Transposed: column c of the panel is B's row (q*NR + c), contiguous in k.
  // biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
  const transposed: Bytes = forLoop(col, i32Const(nr), [
    ...get(panelBase), ...get(col), ...i32Const(4), op.i32Mul, op.i32Add, ...set(d),
    ...get(src), ...get(q), ...i32Const(nr), op.i32Mul, ...get(col), op.i32Add, ...get(ldb), op.i32Mul, op.i32Add, ...set(s),
    ...get(col), ...get(cols), op.i32LtS,
    op.if, blockVoid,
    ...forLoop(k, get(K), [...copyFloat, ...addTo(s, i32Const(4)), ...addTo(d, i32Const(nr * 4))]),
    op.else,
    ...forLoop(k, get(K), [...zeroFloat, ...addTo(d, i32Const(nr * 4))]),
    op.end,
  ]);

  // biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
  const body: Bytes = [
    ...get(q0), ...set(q),
    op.block, blockVoid,
    ...get(q), ...get(q1), op.i32GeS, op.brIf, 0,
    op.loop, blockVoid,
    // cols = min(NR, N - q*NR)
    ...get(N), ...get(q), ...i32Const(nr), op.i32Mul, op.i32Sub, op.localTee, cols, ...i32Const(nr), op.i32GtS,
    op.if, blockVoid, ...i32Const(nr), ...set(cols), op.end,
    ...get(dst), ...get(q), ...get(K), op.i32Mul, ...i32Const(nr * 4), op.i32Mul, op.i32Add, ...set(panelBase),
    ...get(trans), op.if, blockVoid, ...transposed, op.else, ...straight, op.end,
    ...addTo(q, i32Const(1)), ...get(q), ...get(q1), op.i32LtS, op.brIf, 0,
    op.end,
    op.end,
  ];
  return { locals, body };
}
