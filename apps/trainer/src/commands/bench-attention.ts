// `grin bench attention`: the fused attention (sdpa, csrc/attention.cu) forward and forward+backward
// at GRIN's shape (batch 2, sequence 4096, 32 heads, 8 KV heads, head dim 128, causal sliding window
// 2047) against torch's scaled_dot_product_attention with the same mask (transformers' sdpa path:
// repeat_kv + a bool mask) on the same GPU in the same run; and layer_norm / cross_entropy forward
// as a fraction of the device copy bandwidth measured by PyTorch in that run; also flex_attention
// (compiled, sliding-window block mask, GQA) and the fraction of the bf16 peak. Device run:
// tools/device/run-bench.sh. No GPU: exits non-zero with the reason.
import * as T from '@grin-moe/tensor';
import type { BenchReport } from './bench.js';
import { deviceName, deviceNormals, requireCuda, runTorch, type Timing, timeCuda } from './bench-gemm.js';

export const ATTENTION = { B: 2, H: 32, Hkv: 8, S: 4096, D: 128, window: 2047 };

/** (query, key) pairs a causal window lets through, per head. */
export function visiblePairs(S: number, window: number): number {
  let pairs = 0;
  for (let i = 0; i < S; i++) pairs += Math.min(i + 1, window);
  return pairs;
}

export async function benchAttention({
  json,
  quick,
}: {
  json: boolean;
  quick: boolean;
}): Promise<BenchReport> {
  const cuda = await requireCuda('attention');
  const reps = quick ? 2 : 10; // calls per timed block (timeCuda)
  const { B, H, Hkv, S, D, window } = ATTENTION;
  const pairs = visiblePairs(S, window) * B * H;
  const forwardFlops = 4 * D * pairs; // q k^T and p v
  const backwardFlops = 10 * D * pairs; // s recomputed twice (dkdv and dq kernels count once, as FlashAttention)
  const ours = new Map<string, Timing>();
  const base = deviceNormals(64 * 2 ** 20);
  T.tidy(() => {
    const take = (shape: number[], offset: number) => {
      const n = shape.reduce((a, d) => a * d, 1);
      return T.cast(base.slice([offset, offset + n]).reshape(shape), 'bf16');
    };
    const q = take([B, H, S, D], 0);
    const k = take([B, Hkv, S, D], 1 << 22);
    const v = take([B, Hkv, S, D], 1 << 23);
    const g = take([B, H, S, D], 1 << 24);
    const attrs = { scale: 1 / Math.sqrt(D), window, causal: true };
    ours.set(
      'attention_fwd',
      timeCuda(cuda, forwardFlops, 1e12, () => void T.runOp('sdpa', [q, k, v], attrs), reps),
    );
    ours.set(
      'attention_fwdbwd',
      timeCuda(
        cuda,
        forwardFlops + backwardFlops,
        1e12,
        () => {
          const [out, lse] = T.runOp('sdpa', [q, k, v], attrs);
          T.runOp('sdpa_backward', [q, k, v, out!, lse!, g], attrs);
        },
        reps,
      ),
    );
    const x = take([8192, 4096], 0);
    const w = T.cast(T.ones([4096], { device: 'cuda' }), 'bf16');
    const b = T.cast(T.zeros([4096], { device: 'cuda' }), 'bf16');
    ours.set(
      'layer_norm_bf16_8192x4096',
      timeCuda(cuda, 2 * 2 * x.size, 1e9, () => void T.layerNorm(x, w, b), reps),
    );
    const logits = take([2048, 32064], 0);
    const targets = T.tensor(
      Int32Array.from({ length: 2048 }, (_, i) => (i * 7) % 32064),
      { device: 'cuda' },
    );
    ours.set(
      'cross_entropy_bf16_2048x32064',
      timeCuda(cuda, 2 * logits.size, 1e9, () => void T.crossEntropy(logits, targets), reps),
    );
  });
  base.dispose();
  const torch = runTorch('attention', json);
  const results: Record<string, Record<string, number | string>> = {};
  const ratios: Record<string, number> = {};
  for (const [name, mine] of ours) {
    const theirs = torch.get(name);
    const unit = name.startsWith('attention') ? 'TFLOP/s' : 'GB/s';
    results[name] = {
      unit,
      ours: mine.rate,
      ours_ms: mine.ms,
      ...(theirs ? { torch: theirs.rate, torch_ms: theirs.ms } : {}),
      ...(theirs?.variant ? { torch_variant: theirs.variant } : {}),
    };
    if (theirs) ratios[`grin_vs_torch_${name}`] = Number((theirs.ms / mine.ms).toFixed(3));
  }
  // PyTorch's fastest path for the sliding window (flex_attention, compiled, block mask, GQA), and
  // where ours stands against the H200's dense bf16 peak (989 TFLOP/s)
  for (const name of ['attention_fwd', 'attention_fwdbwd']) {
    const mine = ours.get(name)!;
    const flex = torch.get(`${name}_flex`);
    if (flex) {
      results[`${name}_flex`] = { unit: 'TFLOP/s', torch: flex.rate, torch_ms: flex.ms };
      ratios[`grin_vs_flex_${name}`] = Number((flex.ms / mine.ms).toFixed(3));
    }
    ratios[`grin_vs_bf16_peak_${name}`] = Number((mine.rate / 989).toFixed(3));
  }
  const copy = torch.get('copy_bf16_1G');
  if (copy) {
    results.copy_bandwidth = { unit: 'GB/s', torch: copy.rate };
    for (const name of ['layer_norm_bf16_8192x4096', 'cross_entropy_bf16_2048x32064'])
      ratios[`grin_vs_copy_bandwidth_${name}`] = Number((ours.get(name)!.rate / copy.rate).toFixed(3));
  }
  results.attention_shape = { ...ATTENTION, causal: 'true', visible_pairs_per_head: visiblePairs(S, window) };
  if (!json) {
    console.log('ratio = torch time / ours (higher is better); layer ops also against the copy bandwidth');
    for (const [name, r] of Object.entries(results)) console.log(`${name.padEnd(32)} ${JSON.stringify(r)}`);
    for (const [name, r] of Object.entries(ratios)) console.log(`${name.padEnd(56)} ${r}`);
  }
  return { bench: 'attention', device: deviceName(cuda), results, ratios };
}
