"""Builds small random PhimoeForCausalLM models and dumps, per config: config.json,
model.safetensors in the ORIGINAL checkpoint naming (block_sparse_moe.gate / experts.E.w1,w2,w3),
the transformers v5 state dict as model-v5.safetensors (fused experts), ids.json, and
reference.safetensors with eval-mode logits [B,S,V], loss [1] (mean next-token cross-entropy) and
grad.<original name> for every parameter -- the `grin logits --grad` format of DESIGN.md.

Run on a machine with PyTorch + transformers:  python3 tools/reference/phimoe_dump.py --out DIR
Everything runs in float64 on CPU with eager attention and eager experts."""
import argparse
import json
import os
import re
import traceback

import torch
from safetensors.torch import save_file
from transformers import PhimoeConfig, PhimoeForCausalLM

CONFIGS = {
    "gqa2-window5": dict(vocab_size=96, hidden_size=32, intermediate_size=24, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                         sliding_window=5, max_position_embeddings=64),
    "mqa-e6": dict(vocab_size=80, hidden_size=48, intermediate_size=20, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=1, num_local_experts=6,
                   sliding_window=64, max_position_embeddings=64),
    "mha-longrope": dict(vocab_size=64, hidden_size=32, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, num_local_experts=4,
                         sliding_window=7, max_position_embeddings=128,
                         rope_scaling={"type": "longrope", "rope_type": "longrope",
                                       "short_factor": [1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.1, 3.8],
                                       "long_factor": [1.2, 1.5, 2.0, 2.8, 3.9, 5.2, 6.6, 8.0],
                                       "short_mscale": 1.243, "long_mscale": 1.243,
                                       "original_max_position_embeddings": 32}),
}
COMMON = dict(num_experts_per_tok=2, rope_theta=10000.0, rms_norm_eps=1e-5, attention_bias=True,
              lm_head_bias=True, tie_word_embeddings=False, hidden_act="silu", router_jitter_noise=0.01,
              input_jitter_noise=0.01, initializer_range=0.2, attention_dropout=0.0)


def to_original(name, tensor, cfg):
    """Maps one v5 state-dict entry to original-format (name, tensor) pairs."""
    m = re.match(r"model\.layers\.(\d+)\.(mlp|block_sparse_moe)\.(.*)$", name)
    if not m:
        return [(name, tensor)]
    layer, _, rest = m.groups()
    prefix = f"model.layers.{layer}.block_sparse_moe"
    if rest in ("router.weight", "gate.weight", "router.layer.weight"):
        return [(f"{prefix}.gate.weight", tensor)]
    E, H, I = cfg.num_local_experts, cfg.hidden_size, cfg.intermediate_size
    if rest == "experts.gate_up_proj":
        t = tensor if tensor.shape == (E, 2 * I, H) else tensor.transpose(1, 2)
        assert t.shape == (E, 2 * I, H), f"{name}: unexpected shape {tuple(tensor.shape)}"
        out = []
        for e in range(E):
            out.append((f"{prefix}.experts.{e}.w1.weight", t[e, :I]))
            out.append((f"{prefix}.experts.{e}.w3.weight", t[e, I:]))
        return out
    if rest == "experts.down_proj":
        t = tensor if tensor.shape == (E, H, I) else tensor.transpose(1, 2)
        assert t.shape == (E, H, I), f"{name}: unexpected shape {tuple(tensor.shape)}"
        return [(f"{prefix}.experts.{e}.w2.weight", t[e]) for e in range(E)]
    mo = re.match(r"experts\.(\d+)\.(w1|w2|w3)\.weight$", rest)
    if mo:
        return [(f"{prefix}.{rest}", tensor)]
    raise ValueError(f"unmapped parameter {name} {tuple(tensor.shape)}")


def build(name, overrides, out_dir, seed, seq_len=10, prepare=None):
    """One fixture. `seq_len`: tokens per row; `prepare(model, config)`: changes the model before
    the forward (longrope_dump.py swaps in the original Phi-3.5-MoE rotary embedding)."""
    torch.manual_seed(seed)
    config = PhimoeConfig(**COMMON, **overrides)
    config._attn_implementation = "eager"
    model = PhimoeForCausalLM(config)
    if hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation("eager")
    model = model.to(torch.float64)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "layernorm" in pname or "model.norm" in pname:
                p.copy_((1.0 if pname.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
            elif pname.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
    model.eval()
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    print(f"[{name}] parameters:", [(n, tuple(p.shape)) for n, p in model.named_parameters()][:14], "...")

    if prepare is not None:
        prepare(model, config)
    B, S = 2, seq_len
    ids = torch.randint(0, config.vocab_size, (B, S))
    out = model(input_ids=ids, use_cache=False)
    logits = out.logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, config.vocab_size), ids[:, 1:].reshape(-1))
    loss.backward()

    state = {n: p.detach().contiguous() for n, p in model.named_parameters()}
    original, grads = {}, {}
    for n, p in model.named_parameters():
        for on, t in to_original(n, p.detach(), config):
            original[on] = t.contiguous()
        for on, t in to_original(n, p.grad.detach(), config):
            grads[f"grad.{on}"] = t.contiguous()
    save_file(original, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    save_file(state, os.path.join(d, "model-v5.safetensors"), metadata={"format": "pt"})
    reference = {"logits": logits.detach().contiguous(), "loss": loss.detach().reshape(1), **grads}
    rot = getattr(model.model, "rotary_emb", None)
    if rot is not None:
        try:
            pos = torch.arange(S).unsqueeze(0)
            cos, sin = rot(torch.zeros(1, S, config.hidden_size, dtype=torch.float64), pos)
            reference["rope.cos"] = cos.detach().reshape(S, -1).contiguous()
            reference["rope.sin"] = sin.detach().reshape(S, -1).contiguous()
        except Exception as error:  # the signature differs across versions; the logits cover it anyway
            print(f"[{name}] rotary dump skipped: {error}")
    save_file(reference, os.path.join(d, "reference.safetensors"))
    with open(os.path.join(d, "ids.json"), "w") as f:
        json.dump(ids.tolist(), f)
    cfg = config.to_dict()
    cfg.pop("_attn_implementation", None)
    cfg.pop("_experts_implementation", None)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, default=str)
    print(f"[{name}] loss={loss.item():.6f} -> {d}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    failures = 0
    for i, (name, overrides) in enumerate(CONFIGS.items()):
        try:
            build(name, overrides, args.out, 100 + i)
        except Exception:
            failures += 1
            traceback.print_exc()
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
