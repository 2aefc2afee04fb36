"""Parameter, FLOP and memory accounting from a ModelShape alone: no model is built, nothing is allocated.

Used by the trainer (FLOPs per token for TFLOP/s and MFU), by the size report (`python -m
neox_metala.model.report`) and by the tests as an independent check of the model code's parameter count.
Shapes and parameter tables: shared/design/metala-spec.md §2.1 (mixer), §3 (block, model), §6.2 (TP layout).
"""

from __future__ import annotations

from ..shape import NORM_PARAMS_PER_CHANNEL, ModelShape

PRECISIONS = ("bf16", "fp16", "fp32")
PRECISION_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}


# ----------------------------------------------------------------------------------------------------------------
# Parameters


def _layer_parameter_groups(shape: ModelShape, layer_type: str) -> dict[str, tuple[int, bool]]:
    """name -> (parameter count, sharded by tensor parallelism) for one block (spec §2.1, §3.1, §6.2)."""
    d, f = shape.hidden_size, shape.intermediate_size
    groups = {
        # q (D/2×D) + decay logits (D/2×D) + v (D×D) + gate (D×D) + out (D×D) = 4D²; attention: q, k, v, o = 4D²
        "mixer_matrices": (4 * d * d, True),
        "mlp": (3 * d * f, True),  # SwiGLU w1, w3 (F×D) and w2 (D×F), no biases
        "norms": (2 * NORM_PARAMS_PER_CHANNEL[shape.norm] * d, False),  # pre-mixer and pre-MLP norm
    }
    if layer_type == "metala":
        groups["gate_bias"] = (d, True)  # belongs to the column-parallel gate projection
        groups["aug_balance"] = (d // 2 if shape.metala.self_augmentation else 0, True)  # sliced per head under TP
        groups["conv"] = (d * shape.metala.conv_width, False)  # depthwise, no bias; every rank needs all channels
    return groups


def count_parameters(shape: ModelShape) -> dict:
    """Parameter counts. `embedding` = input embedding + the output head if untied; `non_embedding` = the rest.

    Also: `input_embedding`, `output_head` (0 when tied), `layers`, `mixer` (matrices + gate bias + aug + conv),
    `mlp`, `norms` (final norm included), `conv`, `matmul_non_embedding` (weights used in matmuls: mixer matrices
    and MLP), and `per_layer_<type>` for each layer type present.
    """
    counts = dict.fromkeys(("layers", "mixer", "mlp", "norms", "conv", "matmul_non_embedding"), 0)
    for layer_type in set(shape.layer_types):
        groups = _layer_parameter_groups(shape, layer_type)
        counts[f"per_layer_{layer_type}"] = sum(n for n, _ in groups.values())
    for layer_type in shape.layer_types:
        groups = {name: n for name, (n, _) in _layer_parameter_groups(shape, layer_type).items()}
        counts["layers"] += sum(groups.values())
        counts["mlp"] += groups["mlp"]
        counts["norms"] += groups["norms"]
        counts["conv"] += groups.get("conv", 0)
        counts["mixer"] += sum(n for name, n in groups.items() if name not in ("mlp", "norms"))
        counts["matmul_non_embedding"] += groups["mixer_matrices"] + groups["mlp"]
    final_norm = NORM_PARAMS_PER_CHANNEL[shape.norm] * shape.hidden_size
    counts["norms"] += final_norm
    counts["input_embedding"] = shape.vocab_size * shape.hidden_size
    counts["output_head"] = 0 if shape.tied_embeddings else shape.vocab_size * shape.hidden_size
    counts["embedding"] = counts["input_embedding"] + counts["output_head"]
    counts["non_embedding"] = counts["layers"] + final_norm
    counts["total"] = counts["embedding"] + counts["non_embedding"]
    return counts


# ----------------------------------------------------------------------------------------------------------------
# FLOPs


def flops_per_token(shape: ModelShape, training: bool = True) -> dict:
    """Model FLOPs per token (PaLM appendix B / Megatron "model FLOPs": no activation recomputation counted).

    A multiply-add is 2 FLOPs; backward costs twice the forward, so training = 3 × forward for every term.
      weight_matmuls  2·N_matmul forward, N_matmul = mixer matrices (4D²/layer) + SwiGLU (3DF/layer) + head (V·D,
                      counted even when tied, since the logits matmul runs either way). Training: the "6N" rule.
      conv            2·D·k per MetaLA layer (depthwise short convolution).
      metala_core     chunked GLA (fla chunk_gla; Yang et al. 2023, "Gated Linear Attention", §3.3), per head and
                      token with chunk C (shape.metala.chunk_size), dk = D/2H, dv = D/H:
                        intra-chunk  scores q·k over the C/2 earlier tokens of the chunk (causal half)  2·(C/2)·dk
                                     scores · v                                                         2·(C/2)·dv
                        inter-chunk  output q·S_prev (dk×dv)  2·dk·dv,  state update kᵀv  2·dk·dv
                      = C·(dk+dv) + 4·dk·dv per head; × H heads = 1.5·C·D + 2·D²/H per layer.
      attention_core  causal softmax attention with T = seq_length: QKᵀ and AV each 2·(T/2)·D, i.e. 2·T·D per
                      layer (FlashAttention's convention; PaLM and torchtitan count the full square, 4·T·D).
    Not counted (memory-bound, and not "model FLOPs" by the convention): norms, SiLU/sigmoid, decay exp, gating,
    biases, self-augmentation (D FLOPs per layer), softmax, the embedding lookup and the loss.
    """
    d, heads = shape.hidden_size, shape.num_attention_heads
    params = count_parameters(shape)
    num_metala = shape.layer_types.count("metala")
    num_attention = shape.layer_types.count("attention")
    head_matmul = shape.vocab_size * d
    chunk_size = shape.metala.chunk_size
    core_per_head = chunk_size * (shape.head_k_dim + shape.head_v_dim) + 4 * shape.head_k_dim * shape.head_v_dim
    forward = {
        "weight_matmuls": 2 * (params["matmul_non_embedding"] + head_matmul),
        "conv": num_metala * 2 * d * shape.metala.conv_width,
        "metala_core": num_metala * heads * core_per_head,
        "attention_core": num_attention * 2 * shape.seq_length * d,
    }
    factor = 3 if training else 1
    result = {name: factor * value for name, value in forward.items()}
    result["total"] = sum(result.values())
    return result


def model_tflops_per_gpu(flops_per_token: float, tokens_per_second_per_gpu: float) -> float:
    """Achieved model TFLOP/s per GPU (flops_per_token from `flops_per_token(...)["total"]`)."""
    return flops_per_token * tokens_per_second_per_gpu / 1e12


def mfu(flops_per_token: float, tokens_per_second_per_gpu: float, peak_tflops_per_gpu: float) -> float:
    """Model FLOPs utilisation as a fraction of the device's dense peak (0.41 means 41%)."""
    return model_tflops_per_gpu(flops_per_token, tokens_per_second_per_gpu) / peak_tflops_per_gpu


# ----------------------------------------------------------------------------------------------------------------
# Memory


def normalize_precision(precision: str) -> str:
    """bf16, fp16 or fp32; NeoX spellings (`precision: bfloat16`) are accepted."""
    precision = PRECISION_ALIASES.get(precision, precision)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS} or {tuple(PRECISION_ALIASES)}")
    return precision


def _activation_values_per_token(shape: ModelShape, layer_type: str, tp: int) -> float:
    """Rough count of values one block keeps for backward per token (an estimate, not a measurement).

    MetaLA, replicated over TP ranks: the two norms' inputs and outputs (4D), conv pre-activation and output (2D).
    Sharded by TP: q, decay logits, key, log-decay (4·D/2), v, gate (2D), recurrent output, self-aug term,
    head-norm output, gated output (4D), SwiGLU w1/w3 outputs and their product (3F). FlashAttention layers:
    norms (4D) replicated; q, k, v, output (4D) and SwiGLU (3F) sharded; no T×T matrix is stored.
    fla's per-chunk states are recomputed in backward and not counted.
    """
    d, f = shape.hidden_size, shape.intermediate_size
    replicated = 6 * d if layer_type == "metala" else 4 * d
    sharded = (8 * d if layer_type == "metala" else 4 * d) + 3 * f
    return replicated + sharded / tp


def _stage_layer_types(shape: ModelShape, pp: int) -> list[tuple[str, ...]]:
    """Even split of the layers over pipeline stages, remainder on the first stages."""
    base, extra = divmod(shape.num_layers, pp)
    stages, start = [], 0
    for stage in range(pp):
        count = base + (1 if stage < extra else 0)
        stages.append(shape.layer_types[start : start + count])
        start += count
    return stages


def _stage_parameters(shape: ModelShape, layer_types: tuple[str, ...], stage: int, pp: int, tp: int) -> float:
    """Parameters held by one GPU of a stage: TP-sharded groups / tp, replicated groups in full."""
    total = 0.0
    for layer_type in layer_types:
        for count, sharded in _layer_parameter_groups(shape, layer_type).values():
            total += count / tp if sharded else count
    vocab_shard = shape.vocab_size * shape.hidden_size / tp
    if stage == 0:
        total += vocab_shard
    if stage == pp - 1:
        total += NORM_PARAMS_PER_CHANNEL[shape.norm] * shape.hidden_size
        # An untied head lives on the last stage; a tied one too when pp > 1 (DeepSpeed TiedLayerSpec keeps a copy).
        if not shape.tied_embeddings or pp > 1:
            total += vocab_shard
    return total


def memory_estimate(
    shape: ModelShape,
    tp: int = 1,
    pp: int = 1,
    dp: int = 1,
    zero_stage: int = 1,
    precision: str = "bf16",
    micro_batch: int = 1,
    seq_length: int | None = None,
    checkpoint_activations: bool = False,
) -> dict:
    """Bytes per GPU on the worst pipeline stage: weights, gradients, optimizer states and activations.

    Returns the worst stage's entry (`stage`, `parameters_per_gpu`, the four byte counts and `total`) plus
    `per_stage`, the same entries for every stage.

    Mixed precision (bf16/fp16): 2-byte weights and grads, Adam states of 12 bytes (fp32 master, two moments);
    fp32: 4 + 4 + 8. ZeRO-1 shards optimizer states over dp, ZeRO-2 also grads, ZeRO-3 also weights. DeepSpeed's
    transient buffers (bucketed all-reduce, fp32 grad partitions) and the CUDA context are not modelled.
    Activations are an estimate (see `_activation_values_per_token`); with 1F1B, stage s holds pp − s micro-
    batches in flight (assumes at least pp micro-batches per step); the last stage also holds fp32 logits.
    """
    precision = normalize_precision(precision)
    if not 0 <= zero_stage <= 3:
        raise ValueError(f"zero_stage must be 0..3, got {zero_stage}")
    seq_length = seq_length or shape.seq_length
    half = precision != "fp32"
    weight_bytes, grad_bytes, optimizer_bytes = (2, 2, 12) if half else (4, 4, 8)
    activation_bytes = 2 if half else 4
    tokens = micro_batch * seq_length
    stages = []
    for stage, layer_types in enumerate(_stage_layer_types(shape, pp)):
        params = _stage_parameters(shape, layer_types, stage, pp, tp)
        per_layer = [_activation_values_per_token(shape, t, tp) for t in layer_types]
        if checkpoint_activations and per_layer:  # layer inputs kept, one layer recomputed at a time
            layer_values = len(per_layer) * shape.hidden_size + max(per_layer)
        else:
            layer_values = sum(per_layer)
        activations = (pp - stage) * tokens * layer_values * activation_bytes
        if stage == pp - 1:
            activations += tokens * shape.vocab_size / tp * 4
        stages.append(
            {
                "stage": stage,
                "parameters_per_gpu": params,
                "weights": params * weight_bytes / (dp if zero_stage >= 3 else 1),
                "gradients": params * grad_bytes / (dp if zero_stage >= 2 else 1),
                "optimizer_states": params * optimizer_bytes / (dp if zero_stage >= 1 else 1),
                "activations": activations,
            }
        )
    for entry in stages:
        entry["total"] = entry["weights"] + entry["gradients"] + entry["optimizer_states"] + entry["activations"]
    return {**max(stages, key=lambda entry: entry["total"]), "per_stage": stages}
