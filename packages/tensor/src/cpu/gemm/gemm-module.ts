// Assembles the GEMM WebAssembly module (bytes generated at load time, see wasm-encoder.ts) and probes
// for relaxed SIMD. Exports gemm_rows / gemm_cols (gemm-kernel.ts), pack_b (pack-b.ts) and run_tasks,
// which executes a slice of a task table so one call serves a whole thread's share of the work.
// Tested by gemm.test.ts.
// Test: cd packages/tensor && npx vitest run src/cpu/gemm
import { emitGemmBody, gemmParamTypes, type KernelShape } from './gemm-kernel.js';
import { emitPackBody, packParamTypes } from './pack-b.js';
import {
  type Bytes,
  blockVoid,
  encodeModule,
  i32Const,
  memarg,
  op,
  simd,
  simdOp,
  type,
} from './wasm-encoder.js';

/** Task records: 16 i32 words. Word 0 is the kind; then the params of the function it calls. */
export const taskWords = 16;
export const taskKind = { gemmRows: 0, gemmCols: 1, packB: 2 } as const;

// 4 x 12: 12 accumulators + 3 B vectors + 1 broadcast. Measured in L1 on Zen 4 (Node 20, relaxed
// SIMD): 39 GFLOP/s per core, against 38 for 3x16, 34 for 6x8 and 5x8, 27 for 4x8; unroll 1: 27.
export const defaultShape: KernelShape = { mr: 4, nv: 3, kc: 256, mcPanels: 32, unroll: 2 };

export function emitGemmModule(shape: KernelShape, options: { fma: boolean; shared: boolean }): Uint8Array {
  const rows = emitGemmBody(shape, 'rows', options.fma);
  const cols = emitGemmBody(shape, 'cols', options.fma);
  const pack = emitPackBody(shape.nv);
  const [table, start, end, record] = [0, 1, 2, 3];
  const word = (index: number, isFloat: boolean): Bytes => [
    op.localGet,
    record,
    isFloat ? op.f32Load : op.i32Load,
    ...memarg(2, index * 4),
  ];
  const args = (types: number[]): Bytes => types.flatMap((t, index) => word(index + 1, t === type.f32));
  const kind = word(0, false);
  // biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
  const runTasks: Bytes = [
    op.block, blockVoid,
    op.localGet, start, op.localGet, end, op.i32GeS, op.brIf, 0,
    op.localGet, table, op.localGet, start, ...i32Const(taskWords * 4), op.i32Mul, op.i32Add, op.localSet, record,
    op.loop, blockVoid,
    ...kind, ...i32Const(taskKind.packB), op.i32Eq,
    op.if, blockVoid,
    ...args(packParamTypes), op.call, 2,
    op.else,
    ...kind, op.if, blockVoid, ...args(gemmParamTypes), op.call, 1, op.else, ...args(gemmParamTypes), op.call, 0, op.end,
    op.end,
    op.localGet, record, ...i32Const(taskWords * 4), op.i32Add, op.localSet, record,
    op.localGet, start, ...i32Const(1), op.i32Add, op.localTee, start, op.localGet, end, op.i32LtS, op.brIf, 0,
    op.end,
    op.end,
  ];
  const i32s = (n: number) => new Array(n).fill(type.i32);
  return encodeModule(
    [
      { name: 'gemm_rows', params: gemmParamTypes, results: [], ...rows },
      { name: 'gemm_cols', params: gemmParamTypes, results: [], ...cols },
      { name: 'pack_b', params: packParamTypes, results: [], ...pack },
      { name: 'run_tasks', params: i32s(3), results: [], locals: [type.i32], body: runTasks },
    ],
    { shared: options.shared, minPages: 1, maxPages: 65536 },
  );
}

/** A module using f32x4.relaxed_madd: it validates only where relaxed SIMD is enabled. */
export function relaxedSimdProbe(): Uint8Array {
  const body = [
    op.localGet,
    0,
    op.localGet,
    0,
    op.localGet,
    0,
    ...simdOp(simd.f32x4RelaxedMadd),
    op.localSet,
    0,
  ];
  return encodeModule([{ params: [type.v128], results: [], locals: [], body }], {
    shared: false,
    minPages: 1,
    maxPages: 1,
  });
}
