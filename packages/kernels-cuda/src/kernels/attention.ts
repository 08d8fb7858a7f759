// cuda kernels for the fused attention op `sdpa` and its backward (csrc/attention.cu): causal +
// sliding window, grouped KV heads, online softmax over 64-key tiles, bf16 on tensor cores or f32 on
// the SIMT cores; the backward recomputes probabilities from the saved log-sum-exp (FlashAttention-2).
// Mirrors cpu/fused.ts. Test: tests/attention.test.ts (GPU); dev harness: dev/attention/.
import { allocate, registerKernel, type Tensor } from '@grin-moe/tensor';
import { addr, dev, dtypeCode, native } from '../backend.js';

interface AttentionAddon {
  sdpa(
    d: number,
    dtype: number,
    shape: Float64Array,
    out: number,
    lse: number,
    q: number,
    k: number,
    v: number,
  ): void;
  sdpaBackward(
    d: number,
    dtype: number,
    shape: Float64Array,
    dq: number,
    dk: number,
    dv: number,
    lse: number,
    scratch: number,
    scratchBytes: number,
    q: number,
    k: number,
    v: number,
    out: number,
    dOut: number,
  ): void;
  sdpaBackwardScratchBytes(d: number, dtype: number, shape: Float64Array): number;
  sdpaInfo(): SdpaInfo;
}

export interface SdpaInfo {
  tensorCoreCalls: number;
  generalCalls: number;
  /** tensor-core forwards that ran on Hopper's wgmma (attention_wgmma.cu: head dim 128, compute capability 9.0) */
  wgmmaForwardCalls: number;
  /** tensor-core backwards that ran on Hopper's wgmma (attention_wgmma_backward.cu: head dim 128, compute capability 9.0) */
  wgmmaBackwardCalls: number;
  /** of those, the ones whose dQ came from the dS^T tiles the dK / dV kernel stored (workspace up to 2 GiB) */
  wgmmaStoredDsCalls: number;
}

const attention = () => native() as unknown as AttentionAddon;

/**
 * How many sdpa / sdpa_backward calls each kernel family served: the bf16 tensor-core path
 * (attention_tc.cu: head dims 64 or 128, 16-byte aligned rows; at head dim 128 on Hopper,
 * attention_wgmma.cu and attention_wgmma_backward.cu) or the general one (attention.cu).
 */
export function sdpaInfo(): SdpaInfo {
  return attention().sdpaInfo();
}

/** [B, H, Hkv, S, Skv, D, Dv, window, scale, causal], after checking what the kernels support. */
function shapeOf(
  op: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  attrs: { scale: number; window: number; causal: boolean },
) {
  const all = `q ${q.describe()}, k ${k.describe()}, v ${v.describe()}`;
  if (q.dtype !== k.dtype || q.dtype !== v.dtype || (q.dtype !== 'f32' && q.dtype !== 'bf16'))
    throw new TypeError(`${op} (cuda): q, k, v must share one dtype, f32 or bf16; got ${all}`);
  const [B, H, S, D] = q.shape as [number, number, number, number];
  const [, Hkv, Skv] = k.shape as [number, number, number];
  const Dv = v.shape[3]!;
  if (D > 128 || Dv > 128)
    throw new RangeError(`${op} (cuda): head dims up to 128 are supported; got ${all}`);
  return Float64Array.of(B, H, Hkv, S, Skv, D, Dv, attrs.window, attrs.scale, attrs.causal ? 1 : 0);
}

registerKernel('sdpa', 'cuda', ([q, k, v], attrs) => {
  const shape = shapeOf('sdpa', q!, k!, v!, attrs);
  const [B, H, S] = q!.shape as [number, number, number];
  const out = allocate([B, H, S, v!.shape[3]!], q!.dtype, q!.device);
  const lse = allocate([B, H, S], 'f32', q!.device);
  attention().sdpa(dev(q!), dtypeCode(q!.dtype), shape, addr(out), addr(lse), addr(q!), addr(k!), addr(v!));
  return [out, lse];
});

registerKernel('sdpa_backward', 'cuda', ([q, k, v, out, lse, dOut], attrs) => {
  const shape = shapeOf('sdpa_backward', q!, k!, v!, attrs);
  if (lse!.dtype !== 'f32')
    throw new TypeError(`sdpa_backward (cuda): lse must be f32, got ${lse!.describe()}`);
  const dq = allocate(q!.shape, q!.dtype, q!.device);
  const dk = allocate(k!.shape, k!.dtype, k!.device);
  const dv = allocate(v!.shape, v!.dtype, v!.device);
  // the log-sum-exp in log2 units and dOut . out per row, and on Hopper the stored dS^T tiles; freed
  // at once (stream-ordered allocator)
  const scratchBytes = attention().sdpaBackwardScratchBytes(dev(q!), dtypeCode(q!.dtype), shape);
  const scratch = allocate([Math.ceil(scratchBytes / 4)], 'f32', q!.device);
  const g = dOut!.dtype === q!.dtype ? dOut! : null;
  if (!g)
    throw new TypeError(
      `sdpa_backward (cuda): the gradient ${dOut!.describe()} must have q's dtype ${q!.dtype}`,
    );
  attention().sdpaBackward(
    dev(q!),
    dtypeCode(q!.dtype),
    shape,
    addr(dq),
    addr(dk),
    addr(dv),
    addr(lse!),
    addr(scratch),
    scratchBytes,
    addr(q!),
    addr(k!),
    addr(v!),
    addr(out!),
    addr(g),
  );
  scratch.dispose();
  return [dq, dk, dv];
});
