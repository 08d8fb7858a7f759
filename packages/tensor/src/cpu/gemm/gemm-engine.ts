// The compiled GEMM module, its WebAssembly memory and the main-thread instance, created on first use.
// In Node the memory is shared (workers run the same module over it, see gemm-pool.ts); elsewhere, or
// when shared memory is unavailable, it is a plain memory and everything runs on the calling thread.
// Relaxed SIMD (a real FMA) is used when the engine validates it, after enabling V8's flag on Node 20.
// Tested by gemm.test.ts.
// Test: cd packages/tensor && npx vitest run src/cpu/gemm
import { defaultShape, emitGemmModule, relaxedSimdProbe } from './gemm-module.js';

export interface GemmExports {
  run_tasks(table: number, start: number, end: number): void;
}

export interface GemmEngine {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  exports: GemmExports;
  shared: boolean;
  fma: boolean;
  /** Float32/Int32 views of the current buffer (re-made after growth). */
  f32(): Float32Array;
  i32(): Int32Array;
  /** Makes at least `bytes` of memory addressable, growing it if needed. */
  reserve(bytes: number): void;
}

const pageBytes = 65536;
const maxPages = 65536;

// Node's built-in modules without a static import, so the package still loads in browsers
// (process.getBuiltinModule exists from Node 20.16).
export function nodeBuiltin<T>(name: string): T | undefined {
  const process = (globalThis as { process?: { getBuiltinModule?: (name: string) => unknown } }).process;
  return process?.getBuiltinModule?.(name) as T | undefined;
}

function detectRelaxedSimd(): boolean {
  const probe = relaxedSimdProbe() as Uint8Array<ArrayBuffer>;
  if (WebAssembly.validate(probe)) return true;
  // Node 20 (V8 11.3) ships relaxed SIMD behind a flag; later versions enable it by default.
  nodeBuiltin<{ setFlagsFromString(flag: string): void }>('node:v8')?.setFlagsFromString(
    '--experimental-wasm-relaxed-simd',
  );
  return WebAssembly.validate(probe);
}

function canShareMemory(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

let engine: GemmEngine | undefined;

export function gemmEngine(): GemmEngine {
  if (engine) return engine;
  const fma = detectRelaxedSimd();
  const shared = canShareMemory();
  const module = new WebAssembly.Module(
    emitGemmModule(defaultShape, { fma, shared }) as Uint8Array<ArrayBuffer>,
  );
  const memory = new WebAssembly.Memory({
    initial: 16,
    maximum: maxPages,
    shared,
  } as WebAssembly.MemoryDescriptor);
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as GemmExports;
  let f32 = new Float32Array(memory.buffer);
  let i32 = new Int32Array(memory.buffer);
  // Growth replaces memory.buffer; views of the old buffer keep their old length.
  const refresh = () => {
    if (f32.buffer !== memory.buffer) {
      f32 = new Float32Array(memory.buffer);
      i32 = new Int32Array(memory.buffer);
    }
  };
  engine = {
    module,
    memory,
    exports,
    shared,
    fma,
    f32() {
      refresh();
      return f32;
    },
    i32() {
      refresh();
      return i32;
    },
    reserve(bytes) {
      const pages = Math.ceil(bytes / pageBytes);
      const have = memory.buffer.byteLength / pageBytes;
      if (pages > maxPages) {
        throw new Error(
          `gemmF32: this product needs ${Math.ceil(bytes / 2 ** 20)} MiB of WebAssembly memory, more than the 4096 MiB a 32-bit memory can address; split it into smaller products`,
        );
      }
      if (pages > have) memory.grow(pages - have);
    },
  };
  return engine;
}
