# PyTorch reference timings for tests/device/bench.ts (same names, same work counts), run in the
# same device command so that ratios come from one run. Prints "BENCH {json}" lines.
# Run on the device: python3 tools/device/torch_bench.py
import json, time
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
    rate = work / seconds / (1e12 if unit == 'TFLOP/s' else 1e9)
    print('BENCH ' + json.dumps({'impl': 'torch', 'name': name, 'unit': unit, 'rate': round(rate, 1), 'ms': round(seconds * 1e3, 3)}), flush=True)

torch.backends.cuda.matmul.allow_tf32 = False
dev = 'cuda'
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
