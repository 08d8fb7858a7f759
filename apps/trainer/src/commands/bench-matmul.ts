// `grin bench matmul`: f32 GFLOP/s of our WebAssembly GEMM (gemmF32) against onnxruntime-node's MatMul
// (same thread count, timed interleaved in the same run) and, at 256, a plain JS triple loop.
// Run: `pnpm bench` from the workspace root, or `node apps/trainer/dist/cli.js bench matmul [--json] [--quick]`.
import { cpus } from 'node:os';
import { gemmF32, gemmThreads } from '@grin-moe/tensor';
import type { BenchReport } from './bench.js';

interface OrtTensor {
  data: Float32Array;
}
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
}
interface Ort {
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown;
}

// --- A one-node ONNX model (Y = MatMul(A, B)), protobuf-encoded by hand to need no protobuf library.
const varint = (value: number): number[] => {
  const out: number[] = [];
  let v = value;
  for (; v >= 128; v = Math.floor(v / 128)) out.push((v % 128) | 0x80);
  out.push(v);
  return out;
};
const field = (number: number, payload: number[] | string): number[] => {
  const bytes = typeof payload === 'string' ? [...new TextEncoder().encode(payload)] : payload;
  return [...varint((number << 3) | 2), ...varint(bytes.length), ...bytes];
};
const intField = (number: number, value: number): number[] => [...varint(number << 3), ...varint(value)];
// ValueInfoProto{name, type: TypeProto{tensor_type: {elem_type: FLOAT, shape: {dim: [{dim_value}]}}}}
const valueInfo = (name: string, dims: number[]): number[] =>
  field(1, name).concat(
    field(
      2,
      field(1, [
        ...intField(1, 1),
        ...field(
          2,
          dims.flatMap((d) => field(1, intField(1, d))),
        ),
      ]),
    ),
  );

export function matmulOnnxModel(M: number, N: number, K: number): Uint8Array {
  const node = [
    ...field(1, 'A'),
    ...field(1, 'B'),
    ...field(2, 'Y'),
    ...field(3, 'matmul'),
    ...field(4, 'MatMul'),
  ];
  const graph = [
    ...field(1, node),
    ...field(2, 'matmul'),
    ...field(11, valueInfo('A', [M, K])),
    ...field(11, valueInfo('B', [K, N])),
    ...field(12, valueInfo('Y', [M, N])),
  ];
  const opset = [...field(1, ''), ...intField(2, 13)];
  return new Uint8Array([...intField(1, 8), ...field(7, graph), ...field(8, opset)]);
}

async function loadOrt(): Promise<Ort | string> {
  const name = 'onnxruntime-node'; // not a literal, so bundlers leave the native package alone
  try {
    const module = (await import(name)) as Ort & { default?: Ort };
    return module.default?.InferenceSession ? module.default : module;
  } catch (error) {
    return `onnxruntime-node could not be loaded (${(error as Error).message.split('\n')[0]}); reporting ours only`;
  }
}

function plainMatmul(
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  B: Float32Array,
  C: Float32Array,
): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += A[i * K + k]! * B[k * N + j]!;
      C[i * N + j] = sum;
    }
  }
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 50));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);

interface Size {
  label: string;
  M: number;
  N: number;
  K: number;
}

export async function benchMatmul(options: { json: boolean; quick: boolean }): Promise<BenchReport> {
  const threads = gemmThreads();
  const ort = await loadOrt();
  const log = (line: string) => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };
  if (typeof ort === 'string') process.stderr.write(`bench matmul: ${ort}\n`);
  const sizes: Size[] = [
    { label: '256', M: 256, N: 256, K: 256 },
    { label: '512', M: 512, N: 512, K: 512 },
    { label: '1024', M: 1024, N: 1024, K: 1024 },
    { label: '8192x256x1024', M: 8192, N: 1024, K: 256 },
  ];
  const results: Record<string, Record<string, number>> = {};
  const ratios: Record<string, number> = {};
  log(`f32 matmul, GFLOP/s (median), ${threads} threads; ours = gemmF32 (WebAssembly SIMD)`);
  log(
    `${'size'.padEnd(16)}${'ours'.padStart(9)}${'onnxrt'.padStart(9)}${'plain JS'.padStart(10)}${'ours/onnxrt'.padStart(13)}`,
  );

  for (const { label, M, N, K } of sizes) {
    const flops = 2 * M * N * K;
    const A = random(M * K);
    const B = random(K * N);
    const C = new Float32Array(M * N);
    // Repeat small products inside one timing so each sample spans a few milliseconds at least.
    const inner = Math.max(1, Math.round(3e8 / flops));
    const samples = options.quick ? 3 : Math.max(3, Math.min(9, Math.round(1e10 / (flops * inner))));
    const ours = () => gemmF32(false, false, M, N, K, 1, A, 0, K, B, 0, N, 0, C, 0, N);
    let session: OrtSession | undefined;
    let feeds: Record<string, unknown> = {};
    if (typeof ort !== 'string') {
      session = await ort.InferenceSession.create(matmulOnnxModel(M, N, K), {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
      });
      feeds = { A: new ort.Tensor('float32', A, [M, K]), B: new ort.Tensor('float32', B, [K, N]) };
    }
    // Warm-up (first calls start workers, compile, allocate), and a check that both agree.
    for (let w = 0; w < 2; w++) ours();
    if (session) {
      let Y = (await session.run(feeds)).Y!.data;
      for (let w = 0; w < 1; w++) Y = (await session.run(feeds)).Y!.data;
      let worst = 0;
      for (let index = 0; index < C.length; index += 97)
        worst = Math.max(worst, Math.abs(C[index]! - Y[index]!));
      if (worst > 1e-3 * Math.sqrt(K))
        process.stderr.write(`bench matmul: ${label}: ours and onnxruntime differ by ${worst}\n`);
    }
    // Alternate blocks of samples, pausing between them: both runtimes keep their threads spinning
    // for a while after a call, which would steal cores from the other if calls were interleaved 1:1.
    const timesOurs: number[] = [];
    const timesOrt: number[] = [];
    const blocks = options.quick ? 1 : 3;
    for (let block = 0; block < blocks; block++) {
      for (let s = 0; s < samples; s++) {
        const t0 = performance.now();
        for (let r = 0; r < inner; r++) ours();
        timesOurs.push((performance.now() - t0) / inner);
      }
      await pause();
      for (let s = 0; session && s < samples; s++) {
        const t0 = performance.now();
        for (let r = 0; r < inner; r++) await session.run(feeds);
        timesOrt.push((performance.now() - t0) / inner);
      }
      await pause();
    }
    const gflops = (ms: number) => flops / ms / 1e6;
    const row: Record<string, number> = { ours: gflops(median(timesOurs)) };
    if (session) row.onnxruntime = gflops(median(timesOrt));
    if (label === '256') {
      const times: number[] = [];
      for (let s = 0; s < (options.quick ? 1 : 3); s++) {
        const t0 = performance.now();
        plainMatmul(M, N, K, A, B, C);
        times.push(performance.now() - t0);
      }
      row.plainjs = gflops(median(times));
      ratios.ours_vs_plainjs_256 = row.ours! / row.plainjs;
    }
    if (row.onnxruntime) ratios[`ours_vs_onnxruntime_${label}`] = row.ours! / row.onnxruntime;
    results[label] = row;
    const cell = (x: number | undefined, width: number) =>
      (x === undefined ? '-' : x.toFixed(2)).padStart(width);
    log(
      `${label.padEnd(16)}${cell(row.ours, 9)}${cell(row.onnxruntime, 9)}${cell(row.plainjs, 10)}${cell(ratios[`ours_vs_onnxruntime_${label}`], 13)}`,
    );
  }
  const model = cpus()[0]?.model.trim() ?? 'unknown cpu';
  return { bench: 'matmul', device: `cpu (${threads} threads, ${model})`, results, ratios };
}
