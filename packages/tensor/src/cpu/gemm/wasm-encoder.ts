// A tiny WebAssembly binary encoder: just the opcodes and sections the GEMM kernel generator uses.
// It lets the kernel be emitted as bytes at module load, with no toolchain and no dependency, in Node
// and browsers alike. Opcodes follow the WebAssembly core spec (+ SIMD and relaxed-SIMD proposals).
// Tested through gemm.test.ts (every kernel it emits is validated, run, and compared with gemmRef).
// Test: cd packages/tensor && npx vitest run src/cpu/gemm

export type Bytes = number[];

export function uleb(value: number): Bytes {
  const out: Bytes = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

export function sleb(value: number): Bytes {
  const out: Bytes = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const utf8 = (text: string): Bytes => [...new TextEncoder().encode(text)];
const vector = (items: Bytes[]): Bytes => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: Bytes): Bytes => [id, ...uleb(body.length), ...body];

export const type = { i32: 0x7f, f32: 0x7d, v128: 0x7b } as const;
export const blockVoid = 0x40;

/** Core opcodes (single byte). */
// biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
export const op = {
  block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, brIf: 0x0d, return: 0x0f,
  call: 0x10, select: 0x1b,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Load: 0x28, f32Load: 0x2a, f32Store: 0x38,
  i32Const: 0x41, f32Const: 0x43,
  i32Eqz: 0x45, i32Eq: 0x46, i32Ne: 0x47, i32LtS: 0x48, i32GtS: 0x4a, i32GeS: 0x4e,
  i32Add: 0x6a, i32Sub: 0x6b, i32Mul: 0x6c, i32Or: 0x72, i32Shl: 0x74,
  f32ReinterpretI32: 0xbe,
} as const;

/** SIMD opcodes, emitted after the 0xfd prefix as a LEB128 number. */
// biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
export const simd = {
  load: 0x00, load32Splat: 0x09, store: 0x0b, const: 0x0c, f32x4Splat: 0x13,
  f32x4Add: 0xe4, f32x4Mul: 0xe6,
  f32x4RelaxedMadd: 0x105,
} as const;

/** `memarg` for loads/stores: alignment exponent, then the constant byte offset. */
export const memarg = (alignLog2: number, offset: number): Bytes => [...uleb(alignLog2), ...uleb(offset)];
export const simdOp = (code: number): Bytes => [0xfd, ...uleb(code)];
export const i32Const = (value: number): Bytes => [op.i32Const, ...sleb(value)];
export const f32Const = (value: number): Bytes => [
  op.f32Const,
  ...new Uint8Array(new Float32Array([value]).buffer),
];
export const v128Zero = (): Bytes => [...simdOp(simd.const), ...new Array(16).fill(0)];

export interface FunctionDef {
  name?: string; // exported under this name when given
  params: number[];
  results: number[];
  locals: number[]; // one value type per local, after the params
  body: Bytes; // without the final `end`
}

/** Builds a module importing `env.memory` (shared or not) and defining `functions` in order. */
export function encodeModule(
  functions: FunctionDef[],
  memory: { shared: boolean; minPages: number; maxPages: number },
): Uint8Array {
  const types = functions.map((f) => [
    0x60,
    ...vector(f.params.map((t) => [t])),
    ...vector(f.results.map((t) => [t])),
  ]);
  const limits = memory.shared
    ? [0x03, ...uleb(memory.minPages), ...uleb(memory.maxPages)]
    : [0x01, ...uleb(memory.minPages), ...uleb(memory.maxPages)];
  const name = (text: string): Bytes => [...uleb(utf8(text).length), ...utf8(text)];
  const imports = vector([[...name('env'), ...name('memory'), 0x02, ...limits]]);
  const funcs = vector(functions.map((_, index) => uleb(index)));
  const exports = vector(
    functions.flatMap((f, index) => (f.name ? [[...name(f.name), 0x00, ...uleb(index)]] : [])),
  );
  const codes = vector(
    functions.map((f) => {
      const locals = vector(f.locals.map((t) => [...uleb(1), t]));
      const body = [...locals, ...f.body, op.end];
      return [...uleb(body.length), ...body];
    }),
  );
  // biome-ignore format: wasm instructions laid out like assembly, one instruction group per line
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector(types)),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, codes),
  ]);
}
