"""DPO parity reference for `grin dpo` (apps/trainer/src/post/losses.test.ts): the small
PhimoeForCausalLM of packages/model-grin/fixtures/gqa2-window5 (its config.json and the transformers
v5 state dict model-v5.safetensors, written by phimoe_dump.py) in float64 with eager attention and
eager experts, in eval mode, as the policy; the same model with lm_head.bias shifted by
0.3 * sin(v) as the frozen reference. For two preference pairs (prompt masked, the second pair's
completion ending in two unlearned pad positions) it dumps into OUT/reference.safetensors:
chosen_ids, rejected_ids [P,S] (i64), chosen_mask, rejected_mask [P,S] (i64, 1 = completion token
whose log-probability counts), policy_{chosen,rejected}_logps [P], reference_{chosen,rejected}_logps
[P], chosen_rewards, rejected_rewards [P], loss [1] (sigmoid DPO, beta in the metadata), and
grad.<original checkpoint name> of a few parameters.

Run on a machine with PyTorch + transformers 5.17 (from the repository root):
    python3 tools/reference/dpo_dump.py --model packages/model-grin/fixtures/gqa2-window5 \
        --out apps/trainer/fixtures/dpo
"""
import argparse
import json
import math
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import PhimoeConfig, PhimoeForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phimoe_dump import to_original  # noqa: E402

BETA = 0.1
GRADS = [
    "model.embed_tokens.weight",
    "model.layers.0.self_attn.q_proj.weight",
    "model.layers.1.block_sparse_moe.gate.weight",
    "model.layers.0.block_sparse_moe.experts.1.w2.weight",
    "model.layers.1.block_sparse_moe.experts.2.w1.weight",
    "lm_head.bias",
]


def pairs(rows):
    """Two pairs from the fixture's ids: shared prompts, completions from the other row."""
    a, b = rows
    chosen = [a, b]
    rejected = [a[:4] + b[4:], b[:5] + a[5:]]
    prompt = [4, 5]
    S = len(a)
    mask = lambda p, pad: [0] * p + [1] * (S - p - pad) + [0] * pad  # noqa: E731
    chosen_mask = [mask(4, 0), mask(5, 2)]
    rejected_mask = [mask(4, 0), mask(5, 0)]
    assert all(len(r) == S for r in chosen + rejected) and prompt
    return chosen, rejected, chosen_mask, rejected_mask


def load(model_dir, bias_shift):
    config = PhimoeConfig.from_pretrained(model_dir)
    config._attn_implementation = "eager"
    config._experts_implementation = "eager"
    model = PhimoeForCausalLM(config).to(torch.float64)
    if hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation("eager")
    state = load_file(os.path.join(model_dir, "model-v5.safetensors"))
    missing, unexpected = model.load_state_dict({k: v.to(torch.float64) for k, v in state.items()}, strict=False)
    params = {n for n, _ in model.named_parameters()}
    assert not unexpected and not (set(missing) & params), f"state dict mismatch: {missing} {unexpected}"
    if bias_shift:
        with torch.no_grad():
            V = model.lm_head.bias.shape[0]
            model.lm_head.bias.add_(0.3 * torch.sin(torch.arange(V, dtype=torch.float64)))
    return model.eval(), config


def sequence_logps(model, ids, mask):
    logits = model(input_ids=ids, use_cache=False).logits
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (logp * mask[:, 1:]).sum(-1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="fixture directory of phimoe_dump.py (gqa2-window5)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(os.path.join(args.model, "ids.json")) as f:
        rows = json.load(f)
    chosen, rejected, chosen_mask, rejected_mask = pairs(rows)
    t = lambda x: torch.tensor(x, dtype=torch.int64)  # noqa: E731
    chosen_ids, rejected_ids = t(chosen), t(rejected)
    cm, rm = t(chosen_mask).to(torch.float64), t(rejected_mask).to(torch.float64)

    policy, config = load(args.model, bias_shift=False)
    reference, _ = load(args.model, bias_shift=True)
    with torch.no_grad():
        ref_c = sequence_logps(reference, chosen_ids, cm)
        ref_r = sequence_logps(reference, rejected_ids, rm)
    pol_c = sequence_logps(policy, chosen_ids, cm)
    pol_r = sequence_logps(policy, rejected_ids, rm)
    z = BETA * ((pol_c - ref_c) - (pol_r - ref_r))
    loss = -torch.nn.functional.logsigmoid(z).mean()
    loss.backward()

    grads = {}
    for n, p in policy.named_parameters():
        for on, g in to_original(n, p.grad.detach(), config):
            if on in GRADS:
                grads[f"grad.{on}"] = g.contiguous()
    missing = [g for g in GRADS if f"grad.{g}" not in grads]
    assert not missing, f"no gradient for {missing}"
    out = {
        "chosen_ids": chosen_ids,
        "rejected_ids": rejected_ids,
        "chosen_mask": t(chosen_mask),
        "rejected_mask": t(rejected_mask),
        "policy_chosen_logps": pol_c.detach(),
        "policy_rejected_logps": pol_r.detach(),
        "reference_chosen_logps": ref_c,
        "reference_rejected_logps": ref_r,
        "chosen_rewards": (BETA * (pol_c - ref_c)).detach(),
        "rejected_rewards": (BETA * (pol_r - ref_r)).detach(),
        "loss": loss.detach().reshape(1),
        **grads,
    }
    os.makedirs(args.out, exist_ok=True)
    import transformers

    save_file(
        {k: v.contiguous() for k, v in out.items()},
        os.path.join(args.out, "reference.safetensors"),
        metadata={"beta": str(BETA), "bias_shift": "0.3*sin(v)", "transformers": transformers.__version__,
                  "model": os.path.basename(os.path.normpath(args.model))},
    )
    assert math.isfinite(loss.item())
    print(f"loss={loss.item():.10f} policy_chosen={pol_c.tolist()} policy_rejected={pol_r.tolist()} -> {args.out}")


if __name__ == "__main__":
    main()
