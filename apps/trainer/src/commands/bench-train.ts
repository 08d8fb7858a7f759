// `grin bench train`: whole training steps of the largest GRIN-width model that fits one H200
// (4 layers, hidden 4096, 16 experts of width 6400, top-2, sequence 4096, bf16 compute with f32
// master weights and AdamW): forward, cross-entropy + load balancing, backward, clipping, the
// optimizer, and the one host read of loss and gradient norm. Reports tokens/s, MFU (6 x active
// parameters x tokens plus the attention's visible pairs, over 989 TFLOP/s), device-to-host reads
// per step and peak memory, next to transformers' PhimoeForCausalLM (grouped_mm experts, bf16,
// fused AdamW; torch_bench.py --suite train) in the same run, with SDPA and with flex_attention:
// the faster of the two is the baseline. Then the same steps with
// AdamW's moments in bf16 (stochastic rounding; master weights stay f32), reported beside them:
// PyTorch's fused AdamW keeps bf16 moments too. Each also runs with the optimizer on the side
// stream (kernels-cuda onSideStream), where it overlaps the next step's forward: those are timed
// as back-to-back steps (total / steps), as a training loop runs them. The bf16-moment steps are
// also timed with the MoE's other grouped GEMM implementations (lt-streams, wgmma), and with the
// eager attention instead of the fused one.
// Device: tools/device/run-bench.sh.
// Test: cd apps/trainer && npx vitest run src/commands
import {
  type AttentionImplementation,
  GrinModel,
  nextTokenLoss,
  parameterShapes,
  parseConfig,
  stackExpertWeights,
} from '@grin-moe/model-grin';
import { balanceLoss } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import type { BenchReport } from './bench.js';
import { visiblePairs } from './bench-attention.js';
import { deviceName, requireCuda, runTorch } from './bench-gemm.js';

export const TRAIN_SHAPE = {
  layers: 4,
  D: 4096,
  I: 6400,
  E: 16,
  K: 2,
  H: 32,
  Hkv: 8,
  S: 4096,
  V: 32064,
  window: 2047,
};
const H200_BF16_PEAK = 989e12;

export function benchTrainConfig(layers = TRAIN_SHAPE.layers) {
  const { D, I, E, K, H, Hkv, S, V, window } = TRAIN_SHAPE;
  return parseConfig({
    vocab_size: V,
    hidden_size: D,
    intermediate_size: I,
    num_hidden_layers: layers,
    num_attention_heads: H,
    num_key_value_heads: Hkv,
    num_local_experts: E,
    num_experts_per_tok: K,
    max_position_embeddings: S,
    sliding_window: window,
    attention_bias: true,
    lm_head_bias: true,
    input_jitter_noise: 0.01,
    router_jitter_noise: 0.01,
  });
}

/** Frees an optimizer's state tensors (moments, master weights). */
function disposeState(optimizer: T.Optimizer): void {
  for (const t of Object.values(optimizer.stateDict().tensors)) t.dispose();
}

/** Matmul flops of one token's forward+backward (6 per active weight) plus the attention's. */
export function stepFlops(layers: number): { perStep: number; activeParams: number } {
  const { D, I, K, H, Hkv, S, V, window } = TRAIN_SHAPE;
  const headDim = D / H;
  const attentionWeights = 2 * D * D + 2 * D * Hkv * headDim;
  const activeParams = layers * (attentionWeights + D * TRAIN_SHAPE.E + K * 3 * D * I) + V * D;
  // q k^T and p v: 2 * 2 * headDim flops per visible pair and head forward, 3x with the backward
  const attention = layers * 3 * 4 * headDim * H * visiblePairs(S, window);
  return { perStep: 6 * activeParams * S + attention, activeParams };
}

type Cuda = Awaited<ReturnType<typeof requireCuda>>;
type Phases = { forward: number; backward: number; clip_read: number; optimizer: number };

/** The bench model on cuda, its data and one training step (also driven by tools/device's profile). */
export interface TrainRun {
  /** AdamW over params, f32 moments until setMoments */
  optimizer: T.Optimizer;
  /** The model's attention: 'auto' (the fused sdpa op on cuda) or 'eager' (scores, softmax, values) */
  attention: AttentionImplementation;
  /** A fresh AdamW with this moment dtype; the old one's state is freed first (both would not fit). */
  setMoments(moments: 'f32' | 'bf16'): void;
  /** of the last timed step: each phase's time, and of it the time the host took to enqueue it */
  phases: Phases;
  phasesHost: Phases;
  /** One step; returns [loss, gradient norm]. timed: a sync between phases; overlap: the optimizer on the side stream. */
  step(timed?: boolean, overlap?: boolean): Promise<number[]>;
  dispose(): void;
}

export function trainRun(cuda: Cuda, layers: number): TrainRun {
  const config = benchTrainConfig(layers);
  const generator = new T.Generator(2409);
  const leaves = new Map<string, T.Tensor>();
  for (const [name, shape] of parameterShapes(config)) {
    const leaf = T.tidy(() => {
      const isNorm = name.includes('layernorm') || name.startsWith('model.norm.');
      const value = isNorm
        ? T.full(shape, name.endsWith('.weight') ? 1 : 0, { device: 'cuda' })
        : name.endsWith('.bias')
          ? T.zeros(shape, { device: 'cuda' })
          : T.randn(shape, { std: 0.02, device: 'cuda', generator });
      return T.cast(value, 'bf16');
    });
    leaf.name = name;
    leaves.set(name, leaf.setRequiresGrad());
  }
  stackExpertWeights(leaves, config);
  const model = new GrinModel(config, leaves, 'bf16', 'cuda');
  const params = [...leaves.values()];
  const { S, V } = TRAIN_SHAPE;
  const ids = T.tensor(new T.Generator(7).randint(S, 0, V), { shape: [1, S], dtype: 'i32', device: 'cuda' });
  // phases: forward (with the losses), backward, clip + read, optimizer; timed with events when asked
  // phases_host: of each phase, the time the host took to enqueue it (before the sync); a phase whose
  // host time is close to its whole time leaves the GPU waiting on JavaScript
  const run: TrainRun = {
    optimizer: new T.AdamW(params, { lr: 1e-5, weightDecay: 0.1 }),
    attention: 'auto',
    phases: { forward: 0, backward: 0, clip_read: 0, optimizer: 0 },
    phasesHost: { forward: 0, backward: 0, clip_read: 0, optimizer: 0 },
    step: async (timed = false, overlap = false) => {
      const scope = new T.Scope();
      const marks: number[] = [];
      const enqueued: number[] = [];
      const mark = () => {
        if (!timed) return;
        enqueued.push(performance.now());
        cuda.cudaSynchronize();
        marks.push(performance.now());
      };
      try {
        mark();
        const out = model.forward(ids, {
          training: true,
          generator,
          attentionImplementation: run.attention,
        });
        const ce = nextTokenLoss(out.logits_BSV, ids);
        const { loss: aux } = await balanceLoss(out.balance, { alpha: 0.01, mode: 'local' });
        mark();
        T.add(ce, aux).backward();
        mark();
        // the clip coefficient is applied by AdamW as it reads each gradient (no pass of its own)
        const { norm, scale } = T.gradNormScale(params, 1.0);
        const read = T.concat([T.cast(ce, 'f32').reshape([1]), T.cast(norm, 'f32').reshape([1])]).toArray();
        mark();
        const optimizer = run.optimizer;
        if (overlap)
          cuda.onSideStream('cuda', (fence) => optimizer.stepOnce({ gradScale: scale, afterParam: fence }));
        else optimizer.stepOnce({ gradScale: scale });
        optimizer.zeroGrad();
        mark();
        if (timed)
          (Object.keys(run.phases) as Array<keyof Phases>).forEach((k, i) => {
            run.phases[k] = Number((marks[i + 1]! - marks[i]!).toFixed(2));
            run.phasesHost[k] = Number((enqueued[i + 1]! - marks[i]!).toFixed(2));
          });
        return Array.from(read as Float32Array);
      } finally {
        scope.dispose();
      }
    },
    setMoments: (moments) => {
      disposeState(run.optimizer);
      run.optimizer = new T.AdamW(params, { lr: 1e-5, weightDecay: 0.1, moments });
    },
    dispose: () => {
      ids.dispose();
      for (const p of params) p.dispose();
      disposeState(run.optimizer);
    },
  };
  return run;
}

export async function benchTrain({ json, quick }: { json: boolean; quick: boolean }): Promise<BenchReport> {
  const cuda = await requireCuda('train');
  const layers = quick ? 1 : TRAIN_SHAPE.layers;
  const run = trainRun(cuda, layers);
  const { step } = run;
  const { S } = TRAIN_SHAPE;
  for (let i = 0; i < 2; i++) await step();
  cuda.cudaSynchronize();
  cuda.cudaResetPeakMemory();
  const steps = quick ? 2 : 6;
  let last: number[] = [];
  /** The median of `steps` synchronised steps. */
  const medianStep = async () => {
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const started = performance.now();
      last = await step();
      cuda.cudaSynchronize();
      times.push(performance.now() - started);
    }
    return times.sort((a, b) => a - b)[Math.floor(steps / 2)]!;
  };
  const readsBefore = cuda.cudaHostReads();
  const mallocsBefore = cuda.cudaMemoryStats().cudaMallocs;
  const ms = await medianStep();
  const readsPerStep = (cuda.cudaHostReads() - readsBefore) / steps;
  const stats = cuda.cudaMemoryStats();
  const mallocsPerStep = (stats.cudaMallocs - mallocsBefore) / steps;
  await step(true); // one more step with a sync between phases: where the time goes
  // the same steps with GEMM tuning off and with every GEMM tuned (the default tunes the MoE's)
  const otherTuning = async (mode: 'off' | 'all') => {
    cuda.setGemmTuning(mode);
    for (let i = 0; i < 2; i++) await step();
    const median = await medianStep();
    cuda.setGemmTuning('grouped');
    return median;
  };
  const msUntuned = await otherTuning('off');
  const msAllTuned = await otherTuning('all');
  /** Steps back to back, the optimizer on the side stream: each step's one host read is the only sync. */
  const overlappedStep = async () => {
    for (let i = 0; i < 2; i++) await step(false, true);
    cuda.cudaSynchronize();
    const started = performance.now();
    for (let i = 0; i < steps; i++) last = await step(false, true);
    cuda.cudaSynchronize();
    return (performance.now() - started) / steps;
  };
  const msOverlapped = await overlappedStep();
  const phasesF32 = { ...run.phases };
  const phasesHostF32 = { ...run.phasesHost };
  const lastF32 = last;
  // bf16 moments
  run.setMoments('bf16');
  for (let i = 0; i < 2; i++) await step();
  cuda.cudaSynchronize();
  cuda.cudaResetPeakMemory();
  const msBf16Moments = await medianStep();
  const peakBf16Moments = cuda.cudaMemoryStats().peakInUseBytes;
  await step(true);
  const lastBf16Moments = last;
  const msBf16Overlapped = await overlappedStep();
  // the same steps with the MoE's grouped GEMMs run by each other implementation (bench moe times
  // the layer alone; this is the whole step), the default restored after
  const byGrouped: Record<string, number> = {};
  const grouped = cuda.groupedGemmInfo().implementation;
  for (const impl of ['lt-streams', 'wgmma'] as const) {
    cuda.setGroupedGemmImplementation(impl);
    for (let i = 0; i < 2; i++) await step();
    byGrouped[impl] = Number((await medianStep()).toFixed(2));
  }
  cuda.setGroupedGemmImplementation(grouped);
  // the same with the eager attention (scores, softmax, values: what the model ran before the fused op)
  run.attention = 'eager';
  for (let i = 0; i < 2; i++) await step();
  const msEagerAttention = await medianStep();
  run.attention = 'auto';
  const { perStep, activeParams } = stepFlops(layers);
  const ours = {
    ms_per_step: Number(ms.toFixed(2)),
    tokens_per_s: Math.round((S / ms) * 1e3),
    mfu: Number((perStep / (ms / 1e3) / H200_BF16_PEAK).toFixed(3)),
    host_reads_per_step: readsPerStep,
    moe_layers: layers,
    peak_gib: Number((stats.peakInUseBytes / 2 ** 30).toFixed(1)),
    cuda_mallocs_total: stats.cudaMallocs,
    cuda_frees_total: stats.frees,
    phase_ms: phasesF32,
    phase_host_ms: phasesHostF32,
    cuda_mallocs_per_step: mallocsPerStep,
    gemm_tuning: 'grouped',
    ms_per_step_tuning_off: Number(msUntuned.toFixed(2)),
    ms_per_step_tuning_all: Number(msAllTuned.toFixed(2)),
    ms_per_step_overlapped: Number(msOverlapped.toFixed(2)),
    last_loss: Number(lastF32[0]!.toFixed(4)),
    active_params: activeParams,
  };
  const oursBf16Moments = {
    ms_per_step: Number(msBf16Moments.toFixed(2)),
    tokens_per_s: Math.round((S / msBf16Moments) * 1e3),
    mfu: Number((perStep / (msBf16Moments / 1e3) / H200_BF16_PEAK).toFixed(3)),
    peak_gib: Number((peakBf16Moments / 2 ** 30).toFixed(1)),
    ms_per_step_overlapped: Number(msBf16Overlapped.toFixed(2)),
    grouped_gemm: grouped,
    ms_per_step_by_grouped_gemm: byGrouped,
    ms_per_step_eager_attention: Number(msEagerAttention.toFixed(2)),
    phase_ms: { ...run.phases },
    last_loss: Number(lastBf16Moments[0]!.toFixed(4)),
  };
  run.dispose();
  cuda.cudaEmptyCache(); // PyTorch runs next in another process on the same GPU
  const results: Record<string, unknown> = {
    ours,
    ours_bf16_moments: oursBf16Moments,
    shape: { ...TRAIN_SHAPE, layers, dtype: 'bf16 (f32 master)' },
  };
  let torch = new Map<string, { ms: number; rate: number; variant?: string }>();
  try {
    torch = runTorch(quick ? 'train-quick' : 'train', json);
  } catch (error) {
    results.torch_error = (error as Error).message.slice(-300);
  }
  const theirs = torch.get('train_step');
  const theirMemory = torch.get('train_peak_bytes');
  const ratios: Record<string, number> = {};
  if (theirs) {
    results.torch = {
      ms_per_step: theirs.ms,
      tokens_per_s: Math.round((S / theirs.ms) * 1e3),
      mfu: Number((perStep / (theirs.ms / 1e3) / H200_BF16_PEAK).toFixed(3)),
      ...(theirMemory ? { peak_gib: Number((theirMemory.rate / 2 ** 30).toFixed(1)) } : {}),
      ...(theirs.variant ? { variant: theirs.variant } : {}),
      // each attention PyTorch ran; the faster is the baseline above
      ms_per_step_by_attention: Object.fromEntries(
        ['sdpa', 'flex_attention'].flatMap((a) => {
          const t = torch.get(`train_step_${a}`);
          return t ? [[a, Number(t.ms.toFixed(2))]] : [];
        }),
      ),
    };
    ratios.grin_vs_torch_tokens_per_s = Number((theirs.ms / ms).toFixed(3));
    ratios.grin_untuned_vs_torch_tokens_per_s = Number((theirs.ms / msUntuned).toFixed(3));
    ratios.grin_all_tuned_vs_torch_tokens_per_s = Number((theirs.ms / msAllTuned).toFixed(3));
    ratios.grin_bf16_moments_vs_torch_tokens_per_s = Number((theirs.ms / msBf16Moments).toFixed(3));
    ratios.grin_overlapped_vs_torch_tokens_per_s = Number((theirs.ms / msOverlapped).toFixed(3));
    ratios.grin_bf16_moments_overlapped_vs_torch_tokens_per_s = Number(
      (theirs.ms / msBf16Overlapped).toFixed(3),
    );
  }
  if (!json)
    for (const [name, r] of Object.entries(results)) console.log(`${name.padEnd(8)} ${JSON.stringify(r)}`);
  return { bench: 'train', device: deviceName(cuda), results, ratios };
}
