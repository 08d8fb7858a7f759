# PyTorch reference timings for tests/device/bench.ts (same names, same work counts), run in the
# same device command so that ratios come from one run. Prints "BENCH {json}" lines.
# Run on the device: python3 tools/device/torch_bench.py [--suite default|gemm|attention]
# (gemm and attention are the PyTorch sides of `grin bench gemm|attention`, which run this script.)
import argparse, json, time
import torch

def bench(name, work, unit, fn, reps=10):
    for _ in range(3): fn()
    torch.cuda.synchronize()
    blocks = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps): fn()
        torch.cuda.synchronize()
        blocks.append((time.perf_counter() - start) / reps)
    seconds = sorted(blocks)[2]
    emit(name, unit, work / seconds / (1e12 if unit == 'TFLOP/s' else 1e9), seconds)
    return seconds

def emit(name, unit, rate, seconds, variant=None):
    line = {'impl': 'torch', 'name': name, 'unit': unit, 'rate': round(rate, 1), 'ms': round(seconds * 1e3, 4)}
    if variant: line['variant'] = variant
    print('BENCH ' + json.dumps(line), flush=True)

torch.backends.cuda.matmul.allow_tf32 = False
dev = 'cuda'
parser = argparse.ArgumentParser()
parser.add_argument('--suite', default='default', choices=['default', 'gemm', 'attention', 'moe', 'train', 'train-quick'])
parser.add_argument('--tokens', default='2048,8192,16384')
args = parser.parse_args()
suite = args.suite


def visible_pairs(S, window):
    return sum(min(i + 1, window) for i in range(S))


def suite_gemm():
    # same names and shapes as apps/trainer/src/commands/bench-gemm.ts (y = x w^T, w [out, in])
    shapes = [('8192x8192x8192', 8192, 8192, 8192, False), ('q_proj', 8192, 4096, 4096, True),
              ('kv_proj', 8192, 1024, 4096, True), ('o_proj', 8192, 4096, 4096, True),
              ('expert_w1_w3', 8192, 6400, 4096, True), ('expert_w2', 8192, 4096, 6400, True),
              ('gate', 8192, 16, 4096, True)]
    for name, m, n, k, trans_b in shapes:
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        b = torch.randn(n, k, device=dev, dtype=torch.bfloat16) if trans_b else torch.randn(k, n, device=dev, dtype=torch.bfloat16)
        rhs = b.t() if trans_b else b
        bench(f'gemm_bf16_{name}', 2 * m * n * k, 'TFLOP/s', lambda: torch.matmul(a, rhs))
        del a, b, rhs
    # nn.Linear with a bias (addmm with the bias epilogue) and its weight + bias gradient
    m, n, k = 8192, 4096, 4096
    x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
    w = torch.randn(n, k, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, device=dev, dtype=torch.bfloat16)
    g = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
    bench('linear_bias', 2 * m * n * k, 'TFLOP/s', lambda: torch.nn.functional.linear(x, w, b))
    bench('linear_bias_wgrad', 2 * m * n * k, 'TFLOP/s', lambda: (g.t() @ x, g.sum(0)))
    # host cost of one small matmul call (the GPU work is negligible): what a 20 us kernel competes with
    a16 = torch.randn(16, 16, device=dev, dtype=torch.bfloat16)
    for _ in range(200): a16 @ a16
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(5000): a16 @ a16
    torch.cuda.synchronize()
    micros = (time.perf_counter() - start) / 5000 * 1e6
    print('BENCH ' + json.dumps({'impl': 'torch', 'name': 'dispatch_matmul_16x16', 'unit': 'us', 'rate': round(micros, 2), 'ms': round(micros / 1e3, 5)}), flush=True)


def suite_attention():
    # same names as apps/trainer/src/commands/bench-attention.ts; transformers' sdpa path for
    # Phi-3.5-MoE: repeat_kv, then SDPA with a bool mask (q sees k iff k <= q and q - k < window)
    F = torch.nn.functional
    B, H, Hkv, S, D, W = 2, 32, 8, 4096, 128, 2047
    pairs = visible_pairs(S, W) * B * H
    fwd_flops, bwd_flops = 4 * D * pairs, 10 * D * pairs
    q = torch.randn(B, H, S, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, Hkv, S, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, Hkv, S, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
    g = torch.randn(B, H, S, D, device=dev, dtype=torch.bfloat16)
    i = torch.arange(S, device=dev)[:, None]
    j = torch.arange(S, device=dev)[None, :]
    mask = (j <= i) & (i - j < W)
    rep = H // Hkv
    variants = {
        'repeat_kv': lambda: F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), attn_mask=mask),
        'enable_gqa': lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True),
    }
    best = {}
    for variant, attend in variants.items():
        try:
            with torch.no_grad():
                fwd = bench(f'attention_fwd_{variant}', fwd_flops, 'TFLOP/s', attend)
            both = bench(f'attention_fwdbwd_{variant}', fwd_flops + bwd_flops, 'TFLOP/s',
                         lambda: torch.autograd.grad(attend(), (q, k, v), g))
        except Exception as error:  # a variant this torch lacks (enable_gqa before 2.5)
            print(f'# torch attention variant {variant} failed: {error}', flush=True)
            continue
        for key, t in (('attention_fwd', fwd), ('attention_fwdbwd', both)):
            if key not in best or t < best[key][0]:
                best[key] = (t, variant)
    # flex_attention (compiled) with a sliding-window block mask and GQA: PyTorch's fastest path for
    # GRIN's window; reported beside the baseline (attention_*_flex), not folded into it
    try:
        from torch.nn.attention.flex_attention import flex_attention, create_block_mask
        def window_mask(b, h, q_idx, kv_idx):
            return (kv_idx <= q_idx) & (q_idx - kv_idx < W)
        block_mask = create_block_mask(window_mask, None, None, S, S, device=dev)
        flex = torch.compile(flex_attention)
        attend_flex = lambda: flex(q, k, v, block_mask=block_mask, enable_gqa=True)
        with torch.no_grad():
            bench('attention_fwd_flex', fwd_flops, 'TFLOP/s', attend_flex)
        bench('attention_fwdbwd_flex', fwd_flops + bwd_flops, 'TFLOP/s',
              lambda: torch.autograd.grad(attend_flex(), (q, k, v), g))
    except Exception as error:
        print(f'# flex_attention failed: {error}', flush=True)
    # the faster variant is the baseline
    for key, (seconds, variant) in best.items():
        flops = fwd_flops if key == 'attention_fwd' else fwd_flops + bwd_flops
        emit(key, 'TFLOP/s', flops / seconds / 1e12, seconds, variant)
    del q, k, v, g, mask
    torch.cuda.empty_cache()
    a = torch.randn(512 * 2 ** 20, device=dev, dtype=torch.bfloat16)
    b = torch.empty_like(a)
    bench('copy_bf16_1G', 2 * 2 * a.numel(), 'GB/s', lambda: b.copy_(a))
    del a, b
    x = torch.randn(8192, 4096, device=dev, dtype=torch.bfloat16)
    w = torch.ones(4096, device=dev, dtype=torch.bfloat16); bb = torch.zeros(4096, device=dev, dtype=torch.bfloat16)
    bench('layer_norm_bf16_8192x4096', 2 * 2 * x.numel(), 'GB/s', lambda: F.layer_norm(x, (4096,), w, bb))
    logits = torch.randn(2048, 32064, device=dev, dtype=torch.bfloat16)
    targets = torch.arange(2048, device=dev) * 7 % 32064
    bench('cross_entropy_bf16_2048x32064', 2 * logits.numel(), 'GB/s', lambda: F.cross_entropy(logits, targets))


def suite_moe():
    # the PyTorch side of apps/trainer/src/commands/bench-moe.ts: transformers' PhimoeSparseMoeBlock
    # at GRIN's widths, bf16, training (input jitter 0.01, SparseMixer-v2), experts on grouped_mm,
    # forward+backward with the same flop count, and the peak memory above the weights
    from transformers import PhimoeConfig
    from transformers.models.phimoe.modeling_phimoe import PhimoeSparseMoeBlock
    D, I, E, K = 4096, 6400, 16, 2
    config = PhimoeConfig(hidden_size=D, intermediate_size=I, num_local_experts=E, num_experts_per_tok=K,
                          input_jitter_noise=0.01, router_jitter_noise=0.01, num_hidden_layers=1)
    variant = 'eager'
    for attr in ('_experts_implementation', 'experts_implementation'):
        try:
            setattr(config, attr, 'grouped_mm')
            variant = 'grouped_mm'
        except Exception as error:
            print(f'# cannot set {attr}: {error}', flush=True)
    block = PhimoeSparseMoeBlock(config).to(dev, torch.bfloat16).train()
    experts = getattr(block, 'experts', None)
    print(f'# experts module {type(experts).__name__}, config impl {getattr(config, "_experts_implementation", None)}', flush=True)
    for tokens in [int(t) for t in args.tokens.split(',')]:
        x = torch.randn(1, tokens, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
        g = torch.randn_like(x)
        def step():
            out = block(x.clone())  # the block's input jitter multiplies in place: not on a leaf
            out = out[0] if isinstance(out, tuple) else out
            out.backward(g)
            block.zero_grad(set_to_none=True)
            x.grad = None
        flops = 3 * 2 * tokens * K * 3 * D * I
        seconds = bench(f'moe_{tokens}_probe', flops, 'TFLOP/s', step)
        emit(f'moe_{tokens}', 'TFLOP/s', flops / seconds / 1e12, seconds, variant)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        emit(f'moe_peak_bytes_{tokens}', 'bytes', torch.cuda.max_memory_allocated() - base, 0)
        del x, g
        torch.cuda.empty_cache()


def suite_train(layers):
    # the PyTorch side of apps/trainer/src/commands/bench-train.ts: PhimoeForCausalLM at GRIN's widths,
    # bf16 parameters, grouped_mm experts, the load-balancing loss on, fused AdamW, gradient clipping
    # and one loss.item() per step; attention by SDPA (the masked window: no flash kernel) and by
    # flex_attention (compiled, skips the blocks outside the window). Each is emitted as
    # train_step_<attention>, and the faster one as train_step, the baseline.
    from transformers import PhimoeConfig, PhimoeForCausalLM
    best = None
    for attention in ('sdpa', 'flex_attention'):
        config = PhimoeConfig(vocab_size=32064, hidden_size=4096, intermediate_size=6400, num_hidden_layers=layers,
                              num_attention_heads=32, num_key_value_heads=8, num_local_experts=16,
                              num_experts_per_tok=2, max_position_embeddings=4096, sliding_window=2047,
                              attention_bias=True, lm_head_bias=True, input_jitter_noise=0.01,
                              router_jitter_noise=0.01, output_router_logits=True, router_aux_loss_coef=0.01)
        config._attn_implementation = attention
        variant = attention
        try:
            config._experts_implementation = 'grouped_mm'
            variant += '+grouped_mm'
        except Exception as error:
            print(f'# cannot set the experts implementation: {error}', flush=True)
        try:
            seconds, peak = time_train(config)
        except Exception as error:  # an attention this transformers or torch cannot run here
            print(f'# torch train with {attention} failed: {str(error)[:300]}', flush=True)
            continue
        finally:
            torch.cuda.empty_cache()
        emit(f'train_step_{attention}', 'tokens/s', 4096 / seconds, seconds, variant)
        if best is None or seconds < best[0]:
            best = (seconds, peak, variant)
    if best:
        emit('train_step', 'tokens/s', 4096 / best[0], best[0], best[2])
        emit('train_peak_bytes', 'bytes', best[1], 0)


def time_train(config):
    """Median of 6 steps after 2 warm-up steps, and the peak bytes allocated over them."""
    from transformers import PhimoeForCausalLM
    model = PhimoeForCausalLM(config).to(dev, torch.bfloat16).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.1, fused=True)
    ids = torch.randint(0, 32064, (1, 4096), device=dev)
    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()
    try:
        for _ in range(2): step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(6):
            start = time.perf_counter()
            step()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return sorted(times)[3], torch.cuda.max_memory_allocated()
    finally:
        del model, opt


if suite in ('train', 'train-quick'):
    suite_train(4 if suite == 'train' else 1)
    raise SystemExit(0)
if suite == 'moe':
    suite_moe()
    raise SystemExit(0)
if suite == 'gemm':
    suite_gemm()
    raise SystemExit(0)
if suite == 'attention':
    suite_attention()
    raise SystemExit(0)
for n in (4096, 8192):
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16); b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    bench(f'matmul_bf16_{n}', 2 * n ** 3, 'TFLOP/s', lambda: a @ b)
a = torch.randn(4096, 4096, device=dev); b = torch.randn(4096, 4096, device=dev)
bench('matmul_f32_4096', 2 * 4096 ** 3, 'TFLOP/s', lambda: a @ b)
n = 64 * 2 ** 20
a = torch.randn(n, device=dev, dtype=torch.bfloat16); b = torch.randn(n, device=dev, dtype=torch.bfloat16)
bench('add_bf16_64M', 3 * 2 * n, 'GB/s', lambda: a + b)
c = torch.randn(n // 1024, 1024, device=dev); bias = torch.randn(1024, device=dev)
bench('add_bias_f32_64M', 2 * 4 * n, 'GB/s', lambda: c + bias)
bench('sum_rows_f32_64M', 4 * n, 'GB/s', lambda: c.sum(1))
bench('sum_cols_f32_64M', 4 * n, 'GB/s', lambda: c.sum(0))
x = torch.randn(2048, 32064, device=dev, dtype=torch.bfloat16)
bench('softmax_bf16_2048x32064', 2 * 2 * x.numel(), 'GB/s', lambda: torch.softmax(x, -1))
targets = torch.arange(2048, device=dev) * 7 % 32064
bench('cross_entropy_bf16_2048x32064', 2 * x.numel(), 'GB/s', lambda: torch.nn.functional.cross_entropy(x, targets))
x = torch.randn(16384, 4096, device=dev, dtype=torch.bfloat16)
w = torch.ones(4096, device=dev, dtype=torch.bfloat16); bb = torch.zeros(4096, device=dev, dtype=torch.bfloat16)
bench('layer_norm_bf16_16384x4096', 2 * 2 * x.numel(), 'GB/s', lambda: torch.nn.functional.layer_norm(x, (4096,), w, bb))
p = torch.randn(n, device=dev, requires_grad=True); p.grad = torch.randn(n, device=dev)
opt = torch.optim.AdamW([p], lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
bench('adamw_f32_64M', 7 * 4 * n, 'GB/s', lambda: opt.step())
