// A browser-side safetensors reader over an ArrayBuffer (the tensor package's reader opens files
// with node:fs): u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets}}, then the data. F32 as is, F16/BF16 widened to f32. Validates before trusting it.
// Test: cd apps/dashboard && npx vitest run src/web/model
import { bf16BitsToF32Array, f16BitsToF32Array } from '@grin-moe/tensor';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

const widths: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

export function parseSafetensors(buffer: ArrayBuffer, source = 'model.safetensors'): Map<string, HostTensor> {
  const fail = (problem: string): never => {
    throw new Error(`${source}: ${problem}`);
  };
  if (buffer.byteLength < 8) fail(`${buffer.byteLength} bytes is too short for a safetensors file`);
  const headerBytes = Number(new DataView(buffer).getBigUint64(0, true));
  if (headerBytes > buffer.byteLength - 8)
    fail(`header length ${headerBytes} runs past the end (${buffer.byteLength} bytes)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerBytes)));
  } catch (error) {
    return fail(`header is not JSON (${(error as Error).message})`);
  }
  const dataStart = 8 + headerBytes;
  const out = new Map<string, HostTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const width =
      widths[entry.dtype] ??
      fail(`tensor '${name}' is ${entry.dtype}; the dashboard reads F32, F16 and BF16`);
    const count = entry.shape.reduce((a, d) => a * d, 1);
    const [begin, end] = entry.data_offsets;
    if (end - begin !== count * width || dataStart + end > buffer.byteLength || begin < 0) {
      fail(
        `tensor '${name}' [${entry.shape}] ${entry.dtype} has data_offsets [${begin},${end}], expected ${count * width} bytes inside the file`,
      );
    }
    // Copy: the data section need not be aligned for a typed-array view.
    const bytes = buffer.slice(dataStart + begin, dataStart + end);
    const data =
      entry.dtype === 'F32'
        ? new Float32Array(bytes)
        : entry.dtype === 'F16'
          ? f16BitsToF32Array(new Uint16Array(bytes))
          : bf16BitsToF32Array(new Uint16Array(bytes));
    out.set(name, { shape: entry.shape, data });
  }
  return out;
}
