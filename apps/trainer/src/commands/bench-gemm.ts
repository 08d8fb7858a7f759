// `grin bench gemm`: bf16 GEMM on cuda (@grin-moe/kernels-cuda: cuBLASLt) against torch.matmul on
// the same GPU in the same run, at 8192^3 and at GRIN's projection shapes (8192 tokens x hidden 4096
// against q/k/v/o_proj, expert w1/w3/w2 and the router gate), each also timed through plain cuBLAS;
// nn.Linear with a bias (fused epilogue vs matmul + add vs F.linear) and its weight + bias gradient;
// host dispatch cost per call. Ours and torch each run twice, interleaved. The PyTorch side runs as
// `python3 tools/device/torch_bench.py --suite gemm` from this process. Also the shared helpers of
// the GPU benches (bench-attention.ts). Device run: tools/device/run-bench.sh. No GPU: exits non-zero.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as T from '@grin-moe/tensor';
import { CliError } from '../args.js';
import type { BenchReport } from './bench.js';

type KernelsCuda = typeof import('@grin-moe/kernels-cuda');

/** The cuda package when a GPU can run it; otherwise a CliError that says why (CI has no GPU). */
export async function requireCuda(bench: string): Promise<KernelsCuda> {
  let cuda: KernelsCuda;
  try {
    cuda = await import('@grin-moe/kernels-cuda');
  } catch (error) {
    throw new CliError(`bench ${bench}: cannot load @grin-moe/kernels-cuda (${(error as Error).message})`);
  }
  const status = cuda.cudaStatus();
  if (!status.available)
    throw new CliError(`bench ${bench}: needs a CUDA GPU, and cuda is unavailable here: ${status.reason}`);
  return cuda;
}

export interface Timing {
  ms: number;
  rate: number;
}

/** CUDA events on the device stream: 3 warm-ups, then the median of 5 blocks of `reps` calls. */
export function timeCuda(cuda: KernelsCuda, work: number, scale: number, fn: () => void, reps = 10): Timing {
  for (let i = 0; i < 3; i++) T.tidy(fn);
  cuda.cudaSynchronize();
  const timer = cuda.createCudaTimer();
  const blocks: number[] = [];
  try {
    for (let b = 0; b < 5; b++) {
      timer.start();
      for (let i = 0; i < reps; i++) T.tidy(fn);
      timer.stop();
      blocks.push(timer.elapsedMs() / reps);
    }
  } finally {
    timer.dispose();
  }
  const ms = blocks.sort((a, b) => a - b)[2]!;
  return { ms: Number(ms.toFixed(4)), rate: Number((work / (ms / 1e3) / scale).toFixed(1)) };
}

/** tools/device/torch_bench.py from $GRIN_TORCH_BENCH or the nearest repo root above cwd. */
function torchBenchScript(): string {
  if (process.env.GRIN_TORCH_BENCH) return process.env.GRIN_TORCH_BENCH;
  for (let dir = resolve(process.cwd()); ; dir = dirname(dir)) {
    const candidate = join(dir, 'tools/device/torch_bench.py');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new CliError(
    'bench: tools/device/torch_bench.py not found above the working directory (set GRIN_TORCH_BENCH)',
  );
}

/** Runs the PyTorch side of a suite; returns each "BENCH {json}" line's timing by name. */
export function runTorch(
  suite: string,
  json: boolean,
): Map<string, Timing & { unit: string; variant?: string }> {
  const python = process.env.PYTHON ?? 'python3';
  const run = spawnSync(python, [torchBenchScript(), '--suite', suite], {
    encoding: 'utf8',
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
    maxBuffer: 1 << 24,
  });
  if (run.status !== 0)
    throw new CliError(
      `bench: the PyTorch side (${python} torch_bench.py --suite ${suite}) failed (exit ${run.status}): ${(run.stderr || run.error?.message || '').slice(-600)}`,
    );
  if (!json) process.stderr.write(run.stdout);
  const out = new Map<string, Timing & { unit: string; variant?: string }>();
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('BENCH ')) continue;
    const b = JSON.parse(line.slice(6)) as {
      name: string;
      unit: string;
      rate: number;
      ms: number;
      variant?: string;
    };
    out.set(b.name, { ms: b.ms, rate: b.rate, unit: b.unit, ...(b.variant ? { variant: b.variant } : {}) });
  }
  return out;
}

export function deviceName(cuda: KernelsCuda): string {
  const d = cuda.cudaStatus().devices?.[0];
  return d ? `cuda (${d.name})` : 'cuda';
}

/** One host draw of n normals, uploaded once; inputs are views / casts of it. */
export function deviceNormals(n: number): T.Tensor {
  return T.randn([n], { device: 'cuda' });
}

// GRIN-MoE shapes: tokens x hidden against each weight [out, in] (y = x w^T, as nn.Linear).
const TOKENS = 8192;
export const GEMM_SHAPES: Array<{ name: string; m: number; n: number; k: number; transB: boolean }> = [
  { name: '8192x8192x8192', m: 8192, n: 8192, k: 8192, transB: false },
  { name: 'q_proj', m: TOKENS, n: 4096, k: 4096, transB: true },
  { name: 'kv_proj', m: TOKENS, n: 1024, k: 4096, transB: true },
  { name: 'o_proj', m: TOKENS, n: 4096, k: 4096, transB: true },
  { name: 'expert_w1_w3', m: TOKENS, n: 6400, k: 4096, transB: true },
  { name: 'expert_w2', m: TOKENS, n: 4096, k: 6400, transB: true },
  { name: 'gate', m: TOKENS, n: 16, k: 4096, transB: true },
];

// nn.Linear with a bias at the attention projections' shape: the fused Lt epilogue (ours), ours
// unfused (matmul, then add), and F.linear; the weight gradient with the bias gradient fused (BGRADB)
// and unfused (g^T x, then a column sum) against torch's g^T x plus g.sum(0).
const LINEAR_BIAS = { m: TOKENS, n: 4096, k: 4096 };

/** Host microseconds per call of fn on tiny operands (the GPU finishes first, so this is dispatch). */
function dispatchMicros(cuda: KernelsCuda, fn: () => void): number {
  for (let i = 0; i < 200; i++) T.tidy(fn);
  cuda.cudaSynchronize();
  const calls = 5000;
  const start = performance.now();
  for (let i = 0; i < calls; i++) T.tidy(fn);
  cuda.cudaSynchronize();
  return Number((((performance.now() - start) / calls) * 1e3).toFixed(2));
}

/** One pass over every case: timings by name (`NAME` on cuBLASLt, `NAME@cublas` on plain cuBLAS). */
function oursPass(cuda: KernelsCuda): Map<string, Timing> {
  const ours = new Map<string, Timing>();
  T.tidy(() => {
    const base = deviceNormals(65 * 2 ** 20); // 8192^2 plus the 1M offset of the second operand
    const take = (count: number, shape: number[], offset: number) =>
      T.cast(base.slice([offset, offset + count]).reshape(shape), 'bf16');
    for (const s of GEMM_SHAPES) {
      T.tidy(() => {
        const a = take(s.m * s.k, [s.m, s.k], 0);
        const b = s.transB ? take(s.n * s.k, [s.n, s.k], 1 << 20) : take(s.k * s.n, [s.k, s.n], 1 << 20);
        const rhs = s.transB ? b.transpose() : b;
        for (const impl of ['cublasLt', 'cublas'] as const) {
          cuda.setGemmImplementation(impl);
          const t = timeCuda(cuda, 2 * s.m * s.n * s.k, 1e12, () => void T.matmul(a, rhs));
          ours.set(impl === 'cublasLt' ? s.name : `${s.name}@cublas`, t);
        }
        cuda.setGemmImplementation('cublasLt');
      });
    }
    T.tidy(() => {
      const { m, n, k } = LINEAR_BIAS;
      const flops = 2 * m * n * k;
      const x = take(m * k, [m, k], 0);
      const w = take(n * k, [n, k], 1 << 20);
      const bias = take(n, [n], 3 << 20);
      const g = take(m * n, [m, n], 2 << 20);
      ours.set(
        'linear_bias',
        timeCuda(cuda, flops, 1e12, () => void T.linear(x, w, bias)),
      );
      ours.set(
        'linear_bias_unfused',
        timeCuda(cuda, flops, 1e12, () => void T.add(T.matmul(x, w.transpose()), bias)),
      );
      ours.set(
        'linear_bias_wgrad',
        timeCuda(
          cuda,
          flops,
          1e12,
          () => void T.runKernel('linear_weight_grad', 'cuda', [g, x], { hasBias: true }),
        ),
      );
      ours.set(
        'linear_bias_wgrad_unfused',
        timeCuda(cuda, flops, 1e12, () => {
          T.matmul(g.transpose(), x);
          T.sum(g, 0);
        }),
      );
      const a16 = take(256, [16, 16], 0);
      const overhead = dispatchMicros(cuda, () => void T.matmul(a16, a16));
      ours.set('dispatch_matmul_16x16', { ms: overhead / 1e3, rate: overhead });
    });
  });
  return ours;
}

/** The faster of two timings of each name (the GPU's clocks drift between passes). */
function best<V extends { ms: number }>(a: Map<string, V>, b: Map<string, V>): Map<string, V> {
  const out = new Map(a);
  for (const [name, t] of b) if (!out.has(name) || t.ms < out.get(name)!.ms) out.set(name, t);
  return out;
}

export async function benchGemm({ json, quick }: { json: boolean; quick: boolean }): Promise<BenchReport> {
  const cuda = await requireCuda('gemm');
  const results: Record<string, Record<string, number | string>> = {};
  // ours, torch, ours, torch: each side keeps its faster pass, so neither gets the cooler GPU
  // (--quick: one pass each)
  const first = oursPass(cuda);
  const torchFirst = runTorch('gemm', json);
  const ours = quick ? first : best(first, oursPass(cuda));
  const torch = quick ? torchFirst : best(torchFirst, runTorch('gemm', true));
  const info = cuda.gemmInfo();
  const ratios: Record<string, number> = {};
  for (const s of GEMM_SHAPES) {
    const mine = ours.get(s.name)!;
    const theirs = torch.get(`gemm_bf16_${s.name}`);
    results[s.name] = {
      m: s.m,
      n: s.n,
      k: s.k,
      ours_tflops: mine.rate,
      ours_ms: mine.ms,
      ours_ms_cublas: ours.get(`${s.name}@cublas`)!.ms,
    };
    if (theirs) {
      results[s.name]!.torch_tflops = theirs.rate;
      results[s.name]!.torch_ms = theirs.ms;
      ratios[`grin_vs_torch_${s.name}`] = Number((theirs.ms / mine.ms).toFixed(3));
    }
  }
  for (const name of ['linear_bias', 'linear_bias_wgrad']) {
    const mine = ours.get(name)!;
    const theirs = torch.get(name);
    results[name] = {
      ...LINEAR_BIAS,
      ours_tflops: mine.rate,
      ours_ms: mine.ms,
      ours_ms_unfused: ours.get(`${name}_unfused`)!.ms,
    };
    if (theirs) {
      results[name]!.torch_tflops = theirs.rate;
      results[name]!.torch_ms = theirs.ms;
      ratios[`grin_vs_torch_${name}`] = Number((theirs.ms / mine.ms).toFixed(3));
    }
    ratios[`${name}_epilogue_vs_unfused`] = Number((ours.get(`${name}_unfused`)!.ms / mine.ms).toFixed(3));
  }
  const dispatch = ours.get('dispatch_matmul_16x16')!.rate;
  const torchDispatch = torch.get('dispatch_matmul_16x16');
  results.dispatch_matmul_16x16 = {
    ours_us_per_call: dispatch,
    ...(torchDispatch ? { torch_us_per_call: torchDispatch.rate } : {}),
  };
  results.paths = {
    cublasLt: info.cublasLtPath ?? `unavailable: ${info.cublasLtError}`,
    lt_plans: info.plans,
    lt_calls: info.ltCalls,
    cublas_calls: info.cublasCalls,
    fused_epilogues: info.fusedEpilogues,
  };
  if (!json) {
    console.log('bf16 GEMM, TFLOP/s (ratio = torch time / ours, higher is better; best of two passes each)');
    for (const [name, r] of Object.entries(results))
      if ('ours_tflops' in r)
        console.log(
          `${name.padEnd(20)} ours ${String(r.ours_tflops).padStart(7)}  torch ${String(r.torch_tflops ?? '-').padStart(7)}  ratio ${ratios[`grin_vs_torch_${name}`] ?? '-'}`,
        );
    console.log(
      `bias epilogue vs unfused: forward ${ratios.linear_bias_epilogue_vs_unfused}x, weight gradient ${ratios.linear_bias_wgrad_epilogue_vs_unfused}x; dispatch ${dispatch} us/call (torch ${torchDispatch?.rate ?? '-'})`,
    );
  }
  return { bench: 'gemm', device: deviceName(cuda), results, ratios };
}
