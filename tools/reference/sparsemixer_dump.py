"""Dumps transformers' SparseMixer-v2 (`sparsemixer` in transformers.models.phimoe.modeling_phimoe)
with its random draws recorded, in the router reference format of DESIGN.md, for
`grin check-router --reference` and the router package's parity tests.

Run on a machine with PyTorch + transformers:  python3 tools/reference/sparsemixer_dump.py --out DIR
The draws are captured by wrapping torch.Tensor.exponential_ and torch.rand_like, in call order:
Exp for slot 1, U for slot 1, Exp for slot 2, U for slot 2 (the second U is changed in place by
.uniform_(), so the wrapper keeps the tensor itself, not a copy)."""
import argparse
import json
import os

import torch
from safetensors.torch import save_file
from transformers.models.phimoe import modeling_phimoe


def record_draws():
    drawn = []
    original_exponential = torch.Tensor.exponential_
    original_rand_like = torch.rand_like

    def exponential_(self, *args, **kwargs):
        out = original_exponential(self, *args, **kwargs)
        drawn.append(("exp", out))
        return out

    def rand_like(*args, **kwargs):
        out = original_rand_like(*args, **kwargs)
        drawn.append(("u", out))
        return out

    torch.Tensor.exponential_ = exponential_
    torch.rand_like = rand_like

    def restore():
        torch.Tensor.exponential_ = original_exponential
        torch.rand_like = original_rand_like

    return drawn, restore


def dump(name, scores, jitter_eps, out_dir, seed):
    torch.manual_seed(seed)
    scores = scores.detach().clone().requires_grad_(True)
    drawn, restore = record_draws()
    try:
        multiplier, selected = modeling_phimoe.sparsemixer(scores, jitter_eps=jitter_eps, training=True)
    finally:
        restore()
    kinds = [k for k, _ in drawn]
    assert kinds == ["exp", "u", "exp", "u"], f"{name}: unexpected draw order {kinds}"
    upstream = torch.randn(multiplier.shape, dtype=scores.dtype)
    (multiplier * upstream).sum().backward()
    with torch.no_grad():
        eval_multiplier, eval_selected = modeling_phimoe.sparsemixer(scores.detach(), jitter_eps=jitter_eps, training=False)
    tensors = {
        "scores": scores.detach(),
        "exp1": drawn[0][1].detach(),
        "u1": drawn[1][1].detach(),
        "exp2": drawn[2][1].detach(),
        "u2": drawn[3][1].detach(),
        "upstream_grad": upstream,
        "multiplier": multiplier.detach(),
        "selected": selected.to(torch.int64),
        "grad_scores": scores.grad.detach(),
        "eval_multiplier": eval_multiplier.detach(),
        "eval_selected": eval_selected.to(torch.int64),
    }
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    path = os.path.join(out_dir, f"{name}.safetensors")
    save_file(tensors, path, metadata={"jitter_eps": repr(jitter_eps), "source": "transformers.models.phimoe.modeling_phimoe.sparsemixer"})
    print(f"{name}: T={scores.shape[0]} E={scores.shape[1]} dtype={scores.dtype} -> {path}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    f64 = torch.float64

    dump("random-t64-e16", torch.randn(64, 16, generator=g, dtype=f64) * 1.5, 0.01, args.out, 1)

    # Near-ties: many experts inside the 2*eps relative band of the maximum.
    base = torch.randn(32, 8, generator=g, dtype=f64)
    top = base.max(dim=-1, keepdim=True).values
    near = top * (1 - 0.015 * torch.rand(32, 8, generator=g, dtype=f64))
    mix = torch.where(torch.rand(32, 8, generator=g, dtype=f64) < 0.5, near, base)
    dump("near-ties-t32-e8", mix, 0.01, args.out, 2)

    # Rows of equal logits (including all-zero rows: the 0/0 keep test) and exact duplicates.
    equal = torch.randn(16, 4, generator=g, dtype=f64)
    equal[0] = 0.0
    equal[1] = 1.25
    equal[2] = -0.5
    equal[3, :2] = equal[3, 2:]
    equal[4] = torch.tensor([2.0, 2.0, 1.0, 2.0], dtype=f64)
    dump("equal-rows-t16-e4", equal, 0.01, args.out, 3)

    dump("f32-t128-e16-eps05", torch.randn(128, 16, generator=g, dtype=torch.float32), 0.05, args.out, 4)
    dump("random-t40-e6", torch.randn(40, 6, generator=g, dtype=f64) * 3, 0.01, args.out, 5)

    with open(os.path.join(args.out, "versions.json"), "w") as f:
        import transformers
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__}, f)


if __name__ == "__main__":
    main()
