"""An independent float64 NumPy computation of the DPO numbers dpo_dump.py takes from PyTorch, for
machines without PyTorch: the PhiMoE forward of packages/model-grin/fixtures/gqa2-window5 written
out here (LayerNorm, GQA attention with the fixture's own RoPE tables from transformers and the
causal sliding window, SparseMixer-v2 eval-mode top-2 routing, SiLU-GLU experts, lm_head with
bias), the same pairs, masks, bias-shifted reference and beta, and the gradients of a few entries
by central differences. Writes OUT/numpy-reference.json; apps/trainer/src/post/losses.test.ts
compares ours with it (log-probs and loss within 1e-5 relative, gradients within 1e-4).

Run from the repository root (NumPy only, about a minute):
    python3 tools/reference/dpo_numpy.py --model packages/model-grin/fixtures/gqa2-window5 \
        --out apps/trainer/fixtures/dpo
"""
import argparse
import json
import os
import struct

import numpy as np

BETA = 0.1
DTYPES = {"F64": np.float64, "F32": np.float32, "I64": np.int64}
GRAD_ENTRIES = {  # parameter -> flat indices checked by central differences
    "model.embed_tokens.weight": [3 * 32 + 1, 36 * 32 + 7, 94 * 32 + 20],
    "model.layers.0.self_attn.q_proj.weight": [0, 77, 500],
    "model.layers.1.block_sparse_moe.gate.weight": [1, 40, 100],
    "model.layers.0.block_sparse_moe.experts.1.w2.weight": [5, 300, 700],
    "lm_head.bias": [4, 27, 54],
}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], -1)


def sparsemixer_eval(z, eps, k=2):
    """Eval-mode SparseMixer-v2: per slot the argmax of the remaining logits, weight softmax(l)_D."""
    picks, weights = [], []
    src = z.copy()
    for _ in range(k):
        zmax = src.max(-1, keepdims=True)
        keep = (zmax - z) / np.maximum(np.abs(z), zmax) <= 2 * eps
        masked = np.where(keep, src, -np.inf)
        d = src.argmax(-1)
        p = np.exp(masked - masked.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        picks.append(d)
        weights.append(p[np.arange(len(d)), d])
        src = src.copy()
        src[np.arange(len(d)), d] = -np.inf
    return np.stack(picks, 1), np.stack(weights, 1)


def forward(params, cfg, cos, sin, ids):
    B, S = ids.shape
    H, Hkv, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    Dh, E, eps = D // H, cfg["num_local_experts"], cfg["rms_norm_eps"]
    window = cfg["sliding_window"]
    q_pos, k_pos = np.arange(S)[:, None], np.arange(S)[None, :]
    visible = (q_pos - k_pos >= 0) & (q_pos - k_pos < window)
    x = params["model.embed_tokens.weight"][ids]
    for layer in range(cfg["num_hidden_layers"]):
        p = lambda n: params[f"model.layers.{layer}.{n}"]  # noqa: E731
        h = layer_norm(x, p("input_layernorm.weight"), p("input_layernorm.bias"), eps)
        proj = lambda n: h @ p(f"self_attn.{n}.weight").T + p(f"self_attn.{n}.bias")  # noqa: E731
        q = proj("q_proj").reshape(B, S, H, Dh).transpose(0, 2, 1, 3)
        k = proj("k_proj").reshape(B, S, Hkv, Dh).transpose(0, 2, 1, 3)
        v = proj("v_proj").reshape(B, S, Hkv, Dh).transpose(0, 2, 1, 3)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, H // Hkv, axis=1)
        v = np.repeat(v, H // Hkv, axis=1)
        scores = np.where(visible, q @ k.transpose(0, 1, 3, 2) / np.sqrt(Dh), -np.inf)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        attended = (probs @ v).transpose(0, 2, 1, 3).reshape(B, S, D)
        x = x + attended @ p("self_attn.o_proj.weight").T + p("self_attn.o_proj.bias")
        h = layer_norm(x, p("post_attention_layernorm.weight"), p("post_attention_layernorm.bias"), eps).reshape(-1, D)
        picks, weights = sparsemixer_eval(h @ p("block_sparse_moe.gate.weight").T, cfg["router_jitter_noise"])
        out = np.zeros_like(h)
        for e in range(E):
            w = lambda n: p(f"block_sparse_moe.experts.{e}.{n}.weight")  # noqa: E731
            gate = h @ w("w1").T
            expert = ((gate / (1 + np.exp(-gate))) * (h @ w("w3").T)) @ w("w2").T
            weight = ((picks == e) * weights).sum(1, keepdims=True)
            out += weight * expert
        x = x + out.reshape(B, S, D)
    x = layer_norm(x, params["model.norm.weight"], params["model.norm.bias"], eps)
    return x @ params["lm_head.weight"].T + params["lm_head.bias"]


def logps(params, cfg, cos, sin, ids, mask):
    logits = forward(params, cfg, cos, sin, ids)[:, :-1]
    logits = logits - logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, ids[:, 1:, None], -1)[..., 0]
    return (picked * mask[:, 1:]).sum(-1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cfg = json.load(open(os.path.join(args.model, "config.json")))
    params = read_safetensors(os.path.join(args.model, "model.safetensors"))
    ref_tables = read_safetensors(os.path.join(args.model, "reference.safetensors"))
    cos, sin = ref_tables["rope.cos"], ref_tables["rope.sin"]  # transformers' own (float32) tables
    a, b = json.load(open(os.path.join(args.model, "ids.json")))
    S = len(a)
    chosen = np.array([a, b])
    rejected = np.array([a[:4] + b[4:], b[:5] + a[5:]])
    mask = lambda p, pad: [0] * p + [1] * (S - p - pad) + [0] * pad  # noqa: E731
    chosen_mask = np.array([mask(4, 0), mask(5, 2)], dtype=np.float64)
    rejected_mask = np.array([mask(4, 0), mask(5, 0)], dtype=np.float64)
    reference = dict(params)
    reference["lm_head.bias"] = params["lm_head.bias"] + 0.3 * np.sin(np.arange(cfg["vocab_size"]))
    ref_c = logps(reference, cfg, cos, sin, chosen, chosen_mask)
    ref_r = logps(reference, cfg, cos, sin, rejected, rejected_mask)

    def loss_of(p):
        pc = logps(p, cfg, cos, sin, chosen, chosen_mask)
        pr = logps(p, cfg, cos, sin, rejected, rejected_mask)
        z = BETA * ((pc - ref_c) - (pr - ref_r))
        return np.mean(np.log1p(np.exp(-z))), pc, pr

    loss, pol_c, pol_r = loss_of(params)
    grads = {}
    h = 1e-6
    for name, entries in GRAD_ENTRIES.items():
        grads[name] = {}
        for i in entries:
            moved = {}
            for sign in (1, -1):
                p = dict(params)
                p[name] = params[name].copy()
                p[name].flat[i] += sign * h
                moved[sign] = loss_of(p)[0]
            grads[name][str(i)] = (moved[1] - moved[-1]) / (2 * h)
    os.makedirs(args.out, exist_ok=True)
    out = {
        "beta": BETA,
        "policy_chosen_logps": pol_c.tolist(),
        "policy_rejected_logps": pol_r.tolist(),
        "reference_chosen_logps": ref_c.tolist(),
        "reference_rejected_logps": ref_r.tolist(),
        "loss": float(loss),
        "grad_by_central_differences": grads,
    }
    with open(os.path.join(args.out, "numpy-reference.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "grad_by_central_differences"}))


if __name__ == "__main__":
    main()
