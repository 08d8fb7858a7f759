// GPU checks of the model's attention (framework-free, shared by attention.cuda.test.ts and the
// device bundle tools/device/model-attention-entry.ts): the fused path ('auto' on cuda: the sdpa op)
// against the eager path on the CPU in f32, the reference: output and every gradient (input, q/k/v/o
// weights and biases), f32 within f32 rounding, bf16 within bf16 bounds (the eager path on cuda in
// bf16 is reported beside it for scale). Covers GQA, a
// window shorter than the sequence, head dims 64 and 128 (the Hopper kernels), and a KV cache
// through a whole model: prefill, then decode one token at a time, logits against the CPU.
// Test: cd packages/model-grin && npx vitest run src/cuda
import * as T from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { parseConfig } from '../config.js';
import { initRandom } from '../init.js';
import { createKvCache, disposeKvCache, rotaryTables } from '../model.js';
import { type AttentionImplementation, attention } from '../modules/attention.js';
import type { Case } from './moe-cases.js';

const values = (t: T.Tensor) => Float64Array.from(T.cast(t, 'f32').toArray() as Float32Array);

const largest = (t: T.Tensor) => values(t).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * expectAllClose with atol relative to the reference's largest magnitude, or to `fallback` where the
 * reference is all zeros (one query over one key: q's gradient is exactly 0 in the eager path, and
 * the fused backward's recomputed probability is 1 only up to rounding); returns the max abs error.
 */
function close(
  label: string,
  actual: T.Tensor,
  expected: T.Tensor,
  atol: number,
  rtol: number,
  fallback = 1,
): number {
  const a = values(actual);
  const e = values(expected);
  const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || fallback;
  expectAllClose(a, e, { atol: atol * scale, rtol }, label);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - e[i]!)), 0);
}

function attentionConfig(hidden: number, heads: number, kvHeads: number, window: number | null) {
  return parseConfig({
    vocab_size: 64,
    hidden_size: hidden,
    intermediate_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    num_local_experts: 4,
    num_experts_per_tok: 2,
    max_position_embeddings: 4096,
    sliding_window: window,
    attention_bias: true,
    // scores q.k / sqrt(Dh) of about unit size, as in a trained model: with much larger ones the
    // softmax's own f32 rounding (and bf16's of the eager path's scores) dominates either path
    initializer_range: 0.06,
  });
}

type Config = ReturnType<typeof attentionConfig>;

/** One attention call and its backward: output and the gradient of every input. */
function runAttention(
  config: Config,
  device: string,
  dtype: 'f32' | 'bf16',
  implementation: AttentionImplementation,
  [B, S]: [number, number],
): { out: T.Tensor; grads: Map<string, T.Tensor> } {
  const model = initRandom(config, new T.Generator(3), { device });
  const prefix = 'model.layers.0.self_attn';
  const params = new Map<string, T.Tensor>();
  for (const [name, p] of model.params)
    if (name.startsWith(prefix))
      params.set(name, (dtype === 'bf16' ? T.cast(p, 'bf16') : p).detach().setRequiresGrad());
  const n = B * S * config.hiddenSize;
  const x0 = T.tensor(new T.Generator(8).normal(n, 'f32'), { shape: [B, S, config.hiddenSize], device });
  const x = (dtype === 'bf16' ? T.cast(x0, 'bf16') : x0).detach().setRequiresGrad();
  const { cos, sin } = rotaryTables(config, 0, S, dtype, device);
  const out = attention(config, params, prefix, x, {
    cos_SD: cos,
    sin_SD: sin,
    attentionImplementation: implementation,
  });
  const up = T.tensor(new T.Generator(9).normal(n, 'f32'), { shape: [B, S, config.hiddenSize], device });
  T.sum(T.mul(T.cast(out, 'f32'), up)).backward();
  const grads = new Map<string, T.Tensor>([['x', x.grad!]]);
  for (const [name, p] of params) grads.set(name, p.grad!);
  return { out, grads };
}

function attentionCase(
  label: string,
  dims: { hidden: number; heads: number; kvHeads: number; window: number | null },
  shape: [number, number],
  dtype: 'f32' | 'bf16',
): Case {
  return {
    name: `attention ${dtype} ${label}: fused on cuda vs eager f32 on the CPU, output and every gradient`,
    run: () =>
      T.tidy(() => {
        const config = attentionConfig(dims.hidden, dims.heads, dims.kvHeads, dims.window);
        const fused = runAttention(config, 'cuda', dtype, 'auto', shape);
        const ref = runAttention(config, 'cpu', 'f32', 'eager', shape);
        const eager = dtype === 'bf16' ? runAttention(config, 'cuda', 'bf16', 'eager', shape) : null;
        // atol relative to the reference's largest magnitude; bf16 rounds q, k, v, the probabilities
        // and every GEMM's output
        const [atol, rtol] = dtype === 'f32' ? [2e-6, 1e-4] : [1e-2, 5e-2];
        const loose = { atol: Infinity, rtol: Infinity }; // the eager bf16 run is reported, not checked
        // the scale of the gradients that flow, for a gradient that is exactly 0 in the reference
        const gradScale = Math.max(...[...ref.grads.values()].map(largest));
        const note = (name: string, f: T.Tensor, r: T.Tensor, e: T.Tensor | undefined) =>
          `${name} ${close(name, f, r, atol, rtol, gradScale).toExponential(2)}` +
          (e ? ` (eager ${close(name, e, r, loose.atol, loose.rtol).toExponential(2)})` : '');
        const notes = [note('output', fused.out, ref.out, eager?.out)];
        for (const [name, g] of ref.grads)
          notes.push(
            note(name.split('.').slice(-2).join('.'), fused.grads.get(name)!, g, eager?.grads.get(name)),
          );
        return `max abs: ${notes.join(', ')}`;
      }),
  };
}

/** Prefill then one-token decode steps through a whole model with a KV cache, logits per step. */
function cacheCase(window: number, prefill: number, decode: number): Case {
  return {
    name: `model f32 with a KV cache (window ${window}, prefill ${prefill}, ${decode} decode steps): fused on cuda vs eager on the CPU, logits of every step`,
    run: () =>
      T.tidy(() => {
        const config = attentionConfig(128, 2, 1, window);
        const ids = Array.from(new T.Generator(5).randint(prefill + decode, 0, 64));
        const logits = (device: string, implementation: AttentionImplementation) => {
          const model = initRandom(config, new T.Generator(3), { device });
          const cache = createKvCache(config);
          const steps: T.Tensor[] = [];
          let at = 0;
          for (const length of [prefill, ...Array(decode).fill(1)]) {
            const chunk = T.tensor(ids.slice(at, at + length), { shape: [1, length], dtype: 'i32', device });
            steps.push(
              model.forward(chunk, { training: false, cache, attentionImplementation: implementation })
                .logits_BSV,
            );
            at += length;
          }
          disposeKvCache(cache);
          return steps;
        };
        const fused = logits('cuda', 'auto');
        const ref = logits('cpu', 'eager');
        const worst = fused.reduce(
          (m, t, i) => Math.max(m, close(`step ${i} logits`, t, ref[i]!, 2e-6, 1e-4)),
          0,
        );
        return `logits max abs ${worst.toExponential(2)} over ${fused.length} steps`;
      }),
  };
}

export const cases: Case[] = [
  attentionCase(
    'GQA 4:2, head dim 64, window 20 < S = 50',
    { hidden: 256, heads: 4, kvHeads: 2, window: 20 },
    [2, 50],
    'f32',
  ),
  attentionCase(
    'GQA 4:1, head dim 128, no window, S = 70',
    { hidden: 512, heads: 4, kvHeads: 1, window: null },
    [1, 70],
    'f32',
  ),
  attentionCase('S = 1', { hidden: 256, heads: 4, kvHeads: 2, window: 20 }, [3, 1], 'f32'),
  attentionCase(
    'GQA 4:1, head dim 128, window 100 < S = 300',
    { hidden: 512, heads: 4, kvHeads: 1, window: 100 },
    [2, 300],
    'bf16',
  ),
  attentionCase(
    'GQA 4:2, head dim 64, window 64 < S = 200',
    { hidden: 256, heads: 4, kvHeads: 2, window: 64 },
    [1, 200],
    'bf16',
  ),
  cacheCase(9, 12, 6),
];
