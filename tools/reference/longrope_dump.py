"""Dumps packages/model-grin/fixtures/mha-longrope-long: a longrope PhiMoE model run PAST its original
context (S = 48 > original_max_position_embeddings = 32) with the semantics of the original
Phi-3.5-MoE code that the checkpoints were trained with (modeling_phimoe.py of
microsoft/Phi-3.5-MoE-instruct, PhiMoELongRoPEScaledRotaryEmbedding; transformers 4.x did the same):
once the sequence (largest position + 1) exceeds the original context, the long factors AND
long_mscale apply to every position. transformers 5.17 keeps the short factors with the long mscale,
so its rotary embedding is replaced by the original one below before the forward. The short and long
factors and mscales all differ here, so the fixture tells the three behaviours apart.

Same files as phimoe_dump.py (config.json, model.safetensors in the original naming, model-v5,
ids.json, reference.safetensors with logits, loss, every gradient and rope.cos/rope.sin).
Run on a machine with PyTorch + transformers (the device machine has both):
    python3 tools/reference/longrope_dump.py --out packages/model-grin/fixtures
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phimoe_dump import build  # noqa: E402

NAME = "mha-longrope-long"
SEQ_LEN = 48
CONFIG = dict(vocab_size=64, hidden_size=32, intermediate_size=16, num_hidden_layers=1,
              num_attention_heads=2, num_key_value_heads=2, num_local_experts=4,
              sliding_window=64, max_position_embeddings=128,
              rope_scaling={"type": "longrope", "rope_type": "longrope",
                            "short_factor": [1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.1, 3.8],
                            "long_factor": [1.2, 1.5, 2.0, 2.8, 3.9, 5.2, 6.6, 8.0],
                            "short_mscale": 1.1, "long_mscale": 1.243,
                            "original_max_position_embeddings": 32})


class OriginalLongRoPE(torch.nn.Module):
    """PhiMoELongRoPEScaledRotaryEmbedding of the original modeling_phimoe.py: the factors and the
    mscale are chosen once per forward from seq_len = max(position_ids) + 1, for every position."""

    def __init__(self, config):
        super().__init__()
        # transformers v5 keeps every rope field (theta included) in rope_parameters, which is what
        # config.json gets and our loader reads; v4 had rope_scaling and rope_theta apart.
        scaling = getattr(config, "rope_parameters", None) or config.rope_scaling
        self.dim = config.hidden_size // config.num_attention_heads
        self.base = scaling.get("rope_theta", getattr(config, "rope_theta", None))
        self.short_factor = scaling["short_factor"]
        self.long_factor = scaling["long_factor"]
        self.short_mscale = scaling["short_mscale"]
        self.long_mscale = scaling["long_mscale"]
        self.original_max_position_embeddings = scaling["original_max_position_embeddings"]

    @torch.no_grad()
    def forward(self, x, position_ids, *args, **kwargs):
        seq_len = torch.max(position_ids) + 1
        if seq_len > self.original_max_position_embeddings:
            ext_factors = torch.tensor(self.long_factor, dtype=torch.float32, device=x.device)
            mscale = self.long_mscale
        else:
            ext_factors = torch.tensor(self.short_factor, dtype=torch.float32, device=x.device)
            mscale = self.short_mscale
        inv_freq_shape = torch.arange(0, self.dim, 2, dtype=torch.int64, device=x.device).float() / self.dim
        inv_freq = 1.0 / (ext_factors * self.base**inv_freq_shape)
        inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = (inv_freq_expanded @ position_ids_expanded).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * mscale
        sin = emb.sin() * mscale
        return cos.to(x.dtype), sin.to(x.dtype)


def use_original_rope(model, config):
    model.model.rotary_emb = OriginalLongRoPE(config)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    build(NAME, CONFIG, args.out, 300, seq_len=SEQ_LEN, prepare=use_original_rope)


if __name__ == "__main__":
    main()
