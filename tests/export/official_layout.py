"""The official MetaLA Hugging Face model as the spec describes it (§2.12 mixer, §3 block and model, §5.1 config
fields, §5.5 parameter names), written here from the spec alone: the independent reference for import and export.

Plain PyTorch, step-by-step recurrence, any dtype (float64 in the tests). Reads only official config fields.
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from torch import nn

from spec_reference import spec_mixer

OFFICIAL_CONFIG = {
    "model_type": "metala",
    "vocab_size": 8192,
    "decoder_embed_dim": 32,
    "decoder_layers": 2,
    "decoder_attention_heads": 4,
    "glu_dim": 96,
    "glu_act": "silu",
    "bias": False,
    "norm_type": "simplermsnorm",
    "no_scale_embedding": True,
    "init_std": 0.02,
    "use_cache": True,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "add_bos_token": False,
    "causal": True,
    "tie_word_embeddings": True,
}


class SimpleRMSNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


def norm(config):
    return SimpleRMSNorm() if config["norm_type"] == "simplermsnorm" else nn.LayerNorm(config["decoder_embed_dim"])


class TokenMixer(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_gate = nn.Linear(d, d // 2, bias=False), nn.Linear(d, d // 2, bias=False)
        self.v_proj, self.g_proj = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=True)
        self.out_proj = nn.Linear(d, d, bias=False)
        self.aug_balance = nn.Parameter(torch.zeros(d // 2))
        self.conv1d = nn.Conv1d(d, d, 4, groups=d, bias=False, padding=3)

    def forward(self, x):  # spec §2.12, line by line
        return spec_mixer(
            x,
            self.q_proj.weight,
            self.k_gate.weight,
            self.v_proj.weight,
            self.g_proj.weight,
            self.g_proj.bias,
            self.out_proj.weight,
            self.conv1d.weight[:, 0, :],
            self.aug_balance,
            self.heads,
        )


class GLU(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.l1, self.l2 = nn.Linear(d, f, bias=False), nn.Linear(d, f, bias=False)
        self.l3 = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.l3(F.silu(self.l1(x)) * self.l2(x))


class DecoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config["decoder_embed_dim"]
        self.token_norm, self.channel_norm = norm(config), norm(config)
        self.token_mixer = TokenMixer(d, config["decoder_attention_heads"])
        self.channel_mixer = GLU(d, d if config["glu_dim"] == -1 else config["glu_dim"])

    def forward(self, x):
        x = x + self.token_mixer(self.token_norm(x))
        return x + self.channel_mixer(self.channel_norm(x))


class Inner(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embed_tokens = nn.Embedding(config["vocab_size"], config["decoder_embed_dim"])
        self.layers = nn.ModuleList([DecoderLayer(config) for _ in range(config["decoder_layers"])])
        self.final_norm = norm(config)


class OfficialLayoutMetaLA(nn.Module):
    """`model.*` + `lm_head`, tied to the embedding unless tie_word_embeddings is false."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = config
        self.model = Inner(config)
        self.lm_head = nn.Linear(config["decoder_embed_dim"], config["vocab_size"], bias=False)
        if config.get("tie_word_embeddings", True):
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, tokens):
        x = self.model.embed_tokens(tokens)
        for layer in self.model.layers:
            x = layer(x)
        return self.lm_head(self.model.final_norm(x))

    def official_state_dict(self) -> dict:
        state = {k: v.detach().clone() for k, v in self.state_dict().items()}
        if self.config.get("tie_word_embeddings", True):
            del state["lm_head.weight"]  # a tied head is not stored (spec §5.5)
        return state

    @classmethod
    def from_folder(cls, folder, dtype=torch.float64):
        from safetensors.torch import load_file

        config = json.load(open(f"{folder}/config.json"))
        model = cls(config)
        state = load_file(f"{folder}/model.safetensors")
        missing, unexpected = model.load_state_dict(state, strict=False)
        allowed_missing = ["lm_head.weight"] if config.get("tie_word_embeddings", True) else []
        assert missing == allowed_missing and not unexpected, (missing, unexpected)
        return model.to(dtype).eval()


def randomized(config: dict, seed: int) -> OfficialLayoutMetaLA:
    model = OfficialLayoutMetaLA(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() >= 2 else 0.5))
    return model


def write_official_folder(model: OfficialLayoutMetaLA, folder, tokenizer_json: str) -> None:
    """config.json (official fields only), model.safetensors (official keys), the tokenizer, as BICLab ships."""
    import os
    import shutil

    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    json.dump(model.config, open(f"{folder}/config.json", "w"))
    save_file(model.official_state_dict(), f"{folder}/model.safetensors")
    shutil.copyfile(tokenizer_json, f"{folder}/tokenizer.json")
