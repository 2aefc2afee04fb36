"""MetaLA for transformers (`trust_remote_code`), written into every folder neox-metala exports.

Same module and parameter names as the official BICLab/MetaLA model (spec §5.5), so the official class loads these
weights too when the config only uses what it knows. Differences from the official code, all on purpose:
  * the math is neox-metala's ops, shipped beside this file (metala_reference.py, metala_chunked.py,
    metala_short_conv.py): pure PyTorch on CPU and for fp32, fla's kernels on a GPU in bf16/fp16 when installed;
  * decoding keeps the conv history for chunks of any length (the official model restarts it for multi-token
    chunks after a cache) and one `MetaLACache` object (`metala_cache`) holds every layer's state;
  * the head is tied under transformers 5 as well (`tie_word_embeddings` is honoured);
  * hybrid stacks ("attention" layers with RoPE and a KV cache) and the learned-scale "rmsnorm".
Greedy search and sampling are supported; beam search is refused (the cache is not reordered).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import transformers
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.utils import ModelOutput

from .cache_metala import LayerState, MetaLACache
from .configuration_metala import MetaLAConfig
from .metala_chunked import chunked_gla
from .metala_reference import HEAD_NORM_EPS, augment_norm_gate_reference, decay_and_key_reference
from .metala_short_conv import short_conv_fla, short_conv_torch

SIMPLE_RMSNORM_EPS = 1e-6
_HALF = (torch.float16, torch.bfloat16)


def _use_fla(tensor: torch.Tensor) -> bool:
    """fla's Triton kernels on CUDA in half precision (their fp32 path uses TF32); exact PyTorch otherwise."""
    if not (tensor.is_cuda and tensor.dtype in _HALF):
        return False
    return importlib.util.find_spec("fla") is not None and importlib.util.find_spec("triton") is not None


class SimpleRMSNorm(nn.Module):
    """The official "simplermsnorm": no parameters, eps 1e-6, computed in fp32."""

    def __init__(self, dim, eps=SIMPLE_RMSNORM_EPS):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        wide = x.float()
        return (wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


class RMSNorm(SimpleRMSNorm):
    """neox-metala's "rmsnorm": the same with a learned per-channel scale (`weight`)."""

    def __init__(self, dim, eps):
        super().__init__(dim, eps)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        wide = x.float()
        normed = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).to(x.dtype)


def build_norm(config: MetaLAConfig) -> nn.Module:
    dim = config.decoder_embed_dim
    if config.norm_type == "simplermsnorm":
        return SimpleRMSNorm(dim)
    if config.norm_type == "rmsnorm":
        return RMSNorm(dim, config.norm_eps if config.norm_eps is not None else 1e-8)
    return nn.LayerNorm(dim, eps=config.norm_eps if config.norm_eps is not None else 1e-5)  # as the official


def _gla(q, key, v, log_decay, scale, initial_state, chunk_size, kernel_dtype=None):
    """q, key, v, log_decay in fp32 or wider; `kernel_dtype` (bf16/fp16): run fla's kernels on inputs of that
    dtype (log-decay and state stay fp32), as neox_metala.ops does."""
    if kernel_dtype is not None:
        # Imported by name: transformers' import check would otherwise demand fla on every machine.
        gla = importlib.import_module("fla.ops.gla")
        q, key, v = q.to(kernel_dtype), key.to(kernel_dtype), v.to(kernel_dtype)
        state = None if initial_state is None else initial_state.float()
        if q.shape[1] == 1 and not torch.is_grad_enabled():
            return gla.fused_recurrent_gla(
                q, key, v, gk=log_decay, scale=scale, initial_state=state, output_final_state=True
            )
        return gla.chunk_gla(q, key, v, log_decay, scale=scale, initial_state=state, output_final_state=True)
    # A chunk shorter than chunk_size would be zero-padded up to it (chunk_size times the work of one step).
    return chunked_gla(q, key, v, log_decay, scale, initial_state, True, chunk_size=min(chunk_size, q.shape[1]))


class MetaLATokenMixer(nn.Module):
    """Spec §2: short conv -> projections -> GLA recurrence + self-augmentation -> per-head norm -> gate -> out."""

    def __init__(self, config: MetaLAConfig):
        super().__init__()
        dim, self.num_heads = config.decoder_embed_dim, config.decoder_attention_heads
        self.normalizer, self.chunk_size = config.decay_normalizer, config.chunk_size
        self.q_proj = nn.Linear(dim, dim // 2, bias=False)
        self.k_gate = nn.Linear(dim, dim // 2, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.g_proj = nn.Linear(dim, dim, bias=True)
        self.out_proj = nn.Linear(dim, dim, bias=False)
        self.aug_balance = nn.Parameter(torch.zeros(dim // 2)) if config.self_augmentation else None
        kernel = config.conv_kernel_size
        self.conv1d = nn.Conv1d(dim, dim, kernel, groups=dim, bias=False, padding=kernel - 1) if kernel else None

    def forward(self, x, mask=None, state: LayerState | None = None):
        """x: (batch, seq, dim); mask: (batch, seq), 0 at padding; state: continued and updated."""
        if mask is not None:  # pads write nothing into the conv history or the recurrent state
            x = x * mask.unsqueeze(-1).to(x.dtype)
        if self.conv1d is not None:
            conv = short_conv_fla if _use_fla(x) else short_conv_torch
            x, conv_state = conv(
                x, self.conv1d.weight.squeeze(1), None if state is None else state.conv_state, state is not None
            )
            if state is not None:
                state.conv_state = conv_state
        v = self.v_proj(x)
        if mask is not None:
            v = v * mask.unsqueeze(-1).to(v.dtype)
        wide = torch.promote_types(x.dtype, torch.float32)

        def heads(t):  # (batch, seq, width) -> (batch, seq, heads, width / heads) in fp32 or wider
            return t.to(wide).unflatten(-1, (self.num_heads, -1))

        q, gate, v = heads(self.q_proj(x)), heads(self.g_proj(x)), heads(v)
        log_decay, key = decay_and_key_reference(heads(self.k_gate(x)), self.normalizer)
        out, new_state = _gla(
            q,
            key,
            v,
            log_decay,
            q.shape[-1] ** -0.5,
            None if state is None else state.recurrent_state,
            self.chunk_size,
            x.dtype if _use_fla(x) else None,
        )
        out = out.to(wide)
        if self.aug_balance is None:
            mixed = F.silu(gate) * F.layer_norm(out, (out.shape[-1],), eps=HEAD_NORM_EPS)
        else:
            mixed = augment_norm_gate_reference(out, q, key, v, self.aug_balance.to(wide), gate)
        if state is not None:
            state.recurrent_state, state.seen = new_state, state.seen + x.shape[1]
        return self.out_proj(mixed.flatten(-2).to(x.dtype))


def _rotate_half(x):
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


class AttentionTokenMixer(nn.Module):
    """Softmax attention with RoPE (neox-metala's "attention" layers, for hybrid stacks)."""

    def __init__(self, config: MetaLAConfig):
        super().__init__()
        dim, self.num_heads = config.decoder_embed_dim, config.decoder_attention_heads
        self.head_dim = dim // self.num_heads
        self.rotary_dim = int(self.head_dim * config.rotary_pct) // 2 * 2
        self.rotary_base = config.rotary_emb_base
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim, bias=False) for _ in range(4))

    def _rotary(self, x, offset):
        """x: (batch, seq, heads, head_dim) at positions offset, offset + 1, ..."""
        if not self.rotary_dim:
            return x
        inv_freq = 1.0 / (
            self.rotary_base
            ** (torch.arange(0, self.rotary_dim, 2, dtype=torch.float32, device=x.device) / self.rotary_dim)
        )
        positions = torch.arange(offset, offset + x.shape[1], device=x.device, dtype=torch.float32)
        angles = torch.outer(positions, inv_freq)
        angles = torch.cat([angles, angles], dim=-1)[None, :, None, :]
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        rotary, passthrough = x[..., : self.rotary_dim], x[..., self.rotary_dim :]
        return torch.cat([rotary * cos + _rotate_half(rotary) * sin, passthrough], dim=-1)

    def forward(self, x, mask=None, state: LayerState | None = None):
        q, k, v = (
            proj(x).unflatten(-1, (self.num_heads, self.head_dim)) for proj in (self.q_proj, self.k_proj, self.v_proj)
        )  # (batch, seq, heads, head_dim)
        past = 0 if state is None else state.seen
        q, k = self._rotary(q, past), self._rotary(k, past)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (batch, heads, seq, head_dim)
        seq = q.shape[2]
        key_mask = None if mask is None else mask.bool()
        if state is not None:
            if state.keys is not None:
                k, v = torch.cat([state.keys, k], dim=2), torch.cat([state.values, v], dim=2)
            if key_mask is not None or state.key_mask is not None:
                new = key_mask if key_mask is not None else q.new_ones(q.shape[0], seq, dtype=torch.bool)
                old = state.key_mask if state.key_mask is not None else q.new_ones(q.shape[0], past, dtype=torch.bool)
                key_mask = torch.cat([old, new], dim=1)
            state.keys, state.values, state.key_mask, state.seen = k, v, key_mask, past + seq
        if key_mask is None and past == 0:
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            positions = torch.arange(past + seq, device=q.device)
            allowed = positions[None, :] <= positions[past:, None]  # (seq, past + seq)
            if key_mask is not None:
                allowed = allowed[None, None] & key_mask[:, None, None, :]
                allowed = allowed | (positions[None, :] == positions[past:, None])  # pads attend to themselves
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.out_proj(attended.transpose(1, 2).flatten(-2))


class GLU(nn.Module):
    """SwiGLU channel mixer: l3(SiLU(l1 x) * l2 x)."""

    def __init__(self, dim, width, bias=False):
        super().__init__()
        self.l1, self.l2 = nn.Linear(dim, width, bias=bias), nn.Linear(dim, width, bias=bias)
        self.l3 = nn.Linear(width, dim, bias=bias)

    def forward(self, x):
        return self.l3(F.silu(self.l1(x)) * self.l2(x))


class MetaLADecoderLayer(nn.Module):
    def __init__(self, config: MetaLAConfig, layer_idx: int):
        super().__init__()
        mixers = {"metala": MetaLATokenMixer, "attention": AttentionTokenMixer}
        layer_type = config.metala_layer_types[layer_idx]
        if layer_type not in mixers:
            raise ValueError(
                f"config.json: metala_layer_types[{layer_idx}] is {layer_type!r}; known: {', '.join(mixers)}"
            )
        width = config.decoder_embed_dim if config.glu_dim == -1 else config.glu_dim
        self.token_norm, self.token_mixer = build_norm(config), mixers[layer_type](config)
        self.channel_norm, self.channel_mixer = build_norm(config), GLU(config.decoder_embed_dim, width, config.bias)

    def forward(self, x, mask=None, state=None):
        x = x + self.token_mixer(self.token_norm(x), mask, state)
        return x + self.channel_mixer(self.channel_norm(x))


class MetaLAPreTrainedModel(PreTrainedModel):
    config_class = MetaLAConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = False
    _no_split_modules = ["MetaLADecoderLayer"]

    def _init_weights(self, module):
        std = self.config.init_std
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, MetaLATokenMixer) and module.aug_balance is not None:
            nn.init.zeros_(module.aug_balance)  # the self-augmentation starts as a no-op (spec §2.7)


@dataclass
class MetaLAModelOutput(ModelOutput):
    last_hidden_state: torch.FloatTensor | None = None
    metala_cache: MetaLACache | None = None


@dataclass
class MetaLACausalLMOutput(ModelOutput):
    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    metala_cache: MetaLACache | None = None


class MetaLAModel(MetaLAPreTrainedModel):
    def __init__(self, config: MetaLAConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.decoder_embed_dim)
        self.layers = nn.ModuleList([MetaLADecoderLayer(config, i) for i in range(config.decoder_layers)])
        self.final_norm = build_norm(config)
        self.embed_scale = 1.0 if config.no_scale_embedding else math.sqrt(config.decoder_embed_dim)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        metala_cache=None,
        inputs_embeds=None,
        use_cache=None,
        return_dict=None,
        **kwargs,
    ):
        """attention_mask: (batch, seen + seq) as `generate` keeps it, or (batch, seq); 0 at (left) padding."""
        hidden = self.embed_scale * self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and metala_cache is None:
            metala_cache = MetaLACache(len(self.layers))
        mask = None
        if attention_mask is not None:
            mask = attention_mask[:, -hidden.shape[1] :]
            mask = None if bool(mask.all()) else mask
        for index, layer in enumerate(self.layers):
            hidden = layer(hidden, mask, metala_cache.layers[index] if use_cache else None)
        return MetaLAModelOutput(
            last_hidden_state=self.final_norm(hidden), metala_cache=metala_cache if use_cache else None
        )


_TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])


class MetaLAForCausalLM(MetaLAPreTrainedModel, GenerationMixin):
    # transformers 5 maps tied parameters target -> source; 4.x lists the tied targets.
    _tied_weights_keys = (
        {"lm_head.weight": "model.embed_tokens.weight"} if _TRANSFORMERS_MAJOR >= 5 else ["lm_head.weight"]
    )
    _is_stateful = True

    def __init__(self, config: MetaLAConfig):
        super().__init__(config)
        self.model = MetaLAModel(config)
        self.lm_head = nn.Linear(config.decoder_embed_dim, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        metala_cache=None,
        inputs_embeds=None,
        labels=None,
        use_cache=None,
        return_dict=None,
        **kwargs,
    ):
        outputs = self.model(input_ids, attention_mask, metala_cache, inputs_embeds, use_cache)
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)
        return MetaLACausalLMOutput(loss=loss, logits=logits, metala_cache=outputs.metala_cache)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the state lives in `metala_cache`, not in a transformers Cache

    def prepare_inputs_for_generation(
        self, input_ids, attention_mask=None, metala_cache=None, inputs_embeds=None, use_cache=True, **kwargs
    ):
        if metala_cache is not None:  # only the tokens the cache has not seen yet
            input_ids = input_ids[:, metala_cache.seen :]
        elif inputs_embeds is not None:
            return {"inputs_embeds": inputs_embeds, "attention_mask": attention_mask, "use_cache": use_cache}
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "metala_cache": metala_cache,
            "use_cache": use_cache,
        }

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, *args, **kwargs):
        model_kwargs = super()._update_model_kwargs_for_generation(outputs, model_kwargs, *args, **kwargs)
        model_kwargs["metala_cache"] = outputs.metala_cache
        return model_kwargs

    def generate(self, *args, **kwargs):
        config = kwargs.get("generation_config") or self.generation_config
        if max(kwargs.get("num_beams") or 1, getattr(config, "num_beams", 1) or 1) > 1:
            raise ValueError(
                "MetaLA's recurrent cache is not reordered between beams: use greedy search or sampling (num_beams=1)"
            )
        return super().generate(*args, **kwargs)
