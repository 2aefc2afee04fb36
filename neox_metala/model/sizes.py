"""Parameter, FLOP and memory accounting from shape numbers alone: no model is built, nothing is allocated.

Used by the trainer (FLOPs per token for TFLOP/s and MFU), by `python -m neox_metala.model.sizes` to size a run
before launching it, and by the tests as an independent check of the model code's parameter count.
Shapes and parameter tables: shared/design/metala-spec.md §2.1 (mixer), §3 (block, model), §6.2 (TP layout).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os

LAYER_TYPES = ("metala", "attention")
NORM_PARAMS_PER_CHANNEL = {"layernorm": 2, "rmsnorm": 1, "simple_rmsnorm": 0}  # weight+bias / scale / nothing
PRECISIONS = ("bf16", "fp16", "fp32")
PRECISION_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}
DEFAULT_CHUNK_SIZE = 64  # fla chunk_gla and ops.chunked use 64-token chunks


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """The numbers that fix every weight shape. `vocab_size` is the padded size the embedding is built with."""

    num_layers: int
    hidden_size: int
    num_attention_heads: int
    vocab_size: int
    seq_length: int
    intermediate_size: int
    layer_types: tuple[str, ...]  # one of LAYER_TYPES per layer
    tied_embeddings: bool
    norm: str  # a key of NORM_PARAMS_PER_CHANNEL
    conv_kernel_size: int = 4  # 0: no short convolution (metala_short_conv: false, the "w/o conv" ablation)
    self_augmentation: bool = True  # False: no aug_balance (metala_self_augmentation: false)

    def __post_init__(self):
        object.__setattr__(self, "layer_types", tuple(self.layer_types))
        if len(self.layer_types) != self.num_layers:
            raise ValueError(f"layer_types has {len(self.layer_types)} entries but num_layers is {self.num_layers}")
        unknown = sorted(set(self.layer_types) - set(LAYER_TYPES))
        if unknown:
            raise ValueError(f"unknown layer types {unknown}; choose from {LAYER_TYPES}")
        if self.norm not in NORM_PARAMS_PER_CHANNEL:
            raise ValueError(f"unknown norm {self.norm!r}; choose from {tuple(NORM_PARAMS_PER_CHANNEL)}")
        if self.hidden_size % (2 * self.num_attention_heads):
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by 2 * num_attention_heads "
                             f"= {2 * self.num_attention_heads} (MetaLA's head_k_dim is hidden_size / (2·heads))")

    @property
    def head_k_dim(self) -> int:  # q / decay / key width per head (D/2H)
        return self.hidden_size // (2 * self.num_attention_heads)

    @property
    def head_v_dim(self) -> int:  # value / output width per head (D/H)
        return self.hidden_size // self.num_attention_heads


def default_intermediate_size(hidden_size: int) -> int:
    """SwiGLU width, neox `LLaMAParallelMLP` rule (spec §3.1): 256·ceil(int(8D/3)/256); 1024 -> 2816, 2048 -> 5632.

    The one copy of the rule: config, layers and this module all use it."""
    return 256 * math.ceil(int(2 * hidden_size * 4 / 3) / 256)


def padded_vocab_size(vocab_size: int, divisible_by: int = 128, tp: int = 1) -> int:
    """NeoX pads the vocabulary to a multiple of make_vocab_size_divisible_by · tp (50,277 -> 50,304), so every
    tensor-parallel shard of the embedding has the same, GPU-friendly size. The one copy of the rule."""
    multiple = divisible_by * tp
    return -(-vocab_size // multiple) * multiple


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
        groups["aug_balance"] = (d // 2 if shape.self_augmentation else 0, True)  # sliced per head under TP
        groups["conv"] = (d * shape.conv_kernel_size, False)  # depthwise, no bias; every rank needs all channels
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


def flops_per_token(shape: ModelShape, training: bool = True, chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict:
    """Model FLOPs per token (PaLM appendix B / Megatron "model FLOPs": no activation recomputation counted).

    A multiply-add is 2 FLOPs; backward costs twice the forward, so training = 3 × forward for every term.
      weight_matmuls  2·N_matmul forward, N_matmul = mixer matrices (4D²/layer) + SwiGLU (3DF/layer) + head (V·D,
                      counted even when tied, since the logits matmul runs either way). Training: the "6N" rule.
      conv            2·D·k per MetaLA layer (depthwise short convolution).
      metala_core     chunked GLA (fla chunk_gla; Yang et al. 2023, "Gated Linear Attention", §3.3), per head and
                      token with chunk C, dk = D/2H, dv = D/H:
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
    core_per_head = chunk_size * (shape.head_k_dim + shape.head_v_dim) + 4 * shape.head_k_dim * shape.head_v_dim
    forward = {
        "weight_matmuls": 2 * (params["matmul_non_embedding"] + head_matmul),
        "conv": num_metala * 2 * d * shape.conv_kernel_size,
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
        raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS} "
                         f"or {tuple(PRECISION_ALIASES)}")
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
        stages.append(shape.layer_types[start:start + count])
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


def memory_estimate(shape: ModelShape, tp: int = 1, pp: int = 1, dp: int = 1, zero_stage: int = 1,
                    precision: str = "bf16", micro_batch: int = 1, seq_length: int | None = None,
                    checkpoint_activations: bool = False) -> dict:
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
        stages.append({
            "stage": stage,
            "parameters_per_gpu": params,
            "weights": params * weight_bytes / (dp if zero_stage >= 3 else 1),
            "gradients": params * grad_bytes / (dp if zero_stage >= 2 else 1),
            "optimizer_states": params * optimizer_bytes / (dp if zero_stage >= 1 else 1),
            "activations": activations,
        })
    for entry in stages:
        entry["total"] = entry["weights"] + entry["gradients"] + entry["optimizer_states"] + entry["activations"]
    return {**max(stages, key=lambda entry: entry["total"]), "per_stage": stages}


# ----------------------------------------------------------------------------------------------------------------
# Report / CLI


def _human(value: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {suffix}{unit}"
    return f"{value:.4g} {unit}".rstrip()


def format_report(shape: ModelShape, parallel: dict) -> str:
    """The table `print_report` prints. `parallel` holds memory_estimate's keyword arguments (tp, pp, dp, ...)."""
    params = count_parameters(shape)
    flops = flops_per_token(shape, training=True)
    memory = memory_estimate(shape, **parallel)
    gib = 2 ** 30
    rows = [
        ("parameters total", f"{params['total']:,}  ({_human(params['total'])})"),
        ("  embedding", f"{params['embedding']:,}"),
        ("  non-embedding", f"{params['non_embedding']:,}"),
        ("training FLOPs / token", _human(flops["total"], "FLOP")),
        ("  weight matmuls (6N)", _human(flops["weight_matmuls"], "FLOP")),
        ("  token-mixer cores", _human(flops["metala_core"] + flops["attention_core"] + flops["conv"], "FLOP")),
        ("parallel", ", ".join(f"{k}={v}" for k, v in parallel.items())),
        (f"memory / GPU (stage {memory['stage']})", f"{memory['total'] / gib:.2f} GiB"),
        ("  weights", f"{memory['weights'] / gib:.2f} GiB"),
        ("  gradients", f"{memory['gradients'] / gib:.2f} GiB"),
        ("  optimizer states", f"{memory['optimizer_states'] / gib:.2f} GiB"),
        ("  activations (estimate)", f"{memory['activations'] / gib:.2f} GiB"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def print_report(shape: ModelShape, parallel: dict) -> None:
    print(format_report(shape, parallel))


GPT_NEOX_20B_VOCAB = 50277  # the Pile tokenizer's size; used when a config's vocab_file is not on this machine


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m neox_metala.model.sizes",
        description="Parameters, FLOPs per token and memory per GPU, from a NeoX config (-d configs a.yml ...) "
                    "or from explicit shape numbers.")
    parser.add_argument("conf_files", nargs="*", help="NeoX YAML files (as deepy.py takes them)")
    parser.add_argument("-d", "--conf-dir", default=None, help="directory of the YAML files")
    parser.add_argument("--gpus", type=int, default=None,
                        help="world size for the memory estimate (default: the config's num_gpus x num_nodes, "
                             "else one 8-GPU node)")
    model = parser.add_argument_group("model (without a config)")
    model.add_argument("--num-layers", type=int)
    model.add_argument("--hidden-size", type=int)
    model.add_argument("--num-attention-heads", type=int, default=8)
    model.add_argument("--vocab-size", type=int, default=None,
                       help=f"vocabulary size before padding (default: the config's tokenizer, else "
                            f"{GPT_NEOX_20B_VOCAB}, GPT-NeoX-20B's)")
    model.add_argument("--seq-length", type=int, default=2048)
    model.add_argument("--intermediate-size", type=int, default=None, help="default: 256·ceil(int(8D/3)/256)")
    model.add_argument("--layer-types", default="metala",
                       help="one type for all layers, or a comma list with one entry per layer")
    model.add_argument("--no-weight-tying", action="store_true", help="untied output head")
    model.add_argument("--norm", default="rmsnorm", choices=tuple(NORM_PARAMS_PER_CHANNEL))
    model.add_argument("--conv-kernel-size", type=int, default=4)
    run = parser.add_argument_group("parallelism (without a config)")
    run.add_argument("--tp", type=int, default=1)
    run.add_argument("--pp", type=int, default=1)
    run.add_argument("--dp", type=int, default=1)
    run.add_argument("--zero-stage", type=int, default=1)
    run.add_argument("--precision", default="bf16", choices=PRECISIONS + tuple(PRECISION_ALIASES))
    run.add_argument("--micro-batch-size", type=int, default=1)
    run.add_argument("--checkpoint-activations", action="store_true")
    return parser.parse_args(argv)


def shape_and_parallel_from_args(args: argparse.Namespace) -> tuple[ModelShape, dict]:
    """A ModelShape and parallel settings from explicit numbers."""
    if args.num_layers is None or args.hidden_size is None:
        raise ValueError("give config files (-d configs metala-1B.yml) or --num-layers and --hidden-size")
    layer_types = tuple(args.layer_types.split(","))
    if len(layer_types) == 1:
        layer_types = layer_types * args.num_layers
    shape = ModelShape(
        num_layers=args.num_layers, hidden_size=args.hidden_size, num_attention_heads=args.num_attention_heads,
        vocab_size=padded_vocab_size(args.vocab_size or GPT_NEOX_20B_VOCAB, 128, args.tp),
        seq_length=args.seq_length,
        intermediate_size=args.intermediate_size or default_intermediate_size(args.hidden_size),
        layer_types=layer_types, tied_embeddings=not args.no_weight_tying, norm=args.norm,
        conv_kernel_size=args.conv_kernel_size)
    parallel = {"tp": args.tp, "pp": args.pp, "dp": args.dp, "zero_stage": args.zero_stage,
                "precision": args.precision, "micro_batch": args.micro_batch_size,
                "checkpoint_activations": args.checkpoint_activations}
    return shape, parallel


def shape_from_config(config, padded_vocab: int) -> ModelShape:
    """The ModelShape of a NeoXArgs (neox_metala.config) with the given padded vocabulary."""
    from ..config import layer_types

    model = config.model
    return ModelShape(num_layers=model.num_layers, hidden_size=model.hidden_size,
                      num_attention_heads=model.num_attention_heads, vocab_size=padded_vocab,
                      seq_length=model.seq_length, intermediate_size=model.intermediate_size,
                      layer_types=tuple(layer_types(config)), tied_embeddings=not model.no_weight_tying,
                      norm=model.norm, conv_kernel_size=config.metala.metala_conv_kernel_size
                      if config.metala.metala_short_conv else 0,
                      self_augmentation=config.metala.metala_self_augmentation)


def _config_vocab_size(config, override: int | None) -> int:
    if override:
        return override
    vocab_file = config.data.vocab_file
    if vocab_file and os.path.exists(vocab_file):
        from ..data.tokenizers import load_tokenizer

        return load_tokenizer(config.data.tokenizer_type, vocab_file, config.data.merge_file).vocab_size
    return GPT_NEOX_20B_VOCAB


def shape_and_parallel_from_config(args: argparse.Namespace) -> tuple[ModelShape, dict]:
    from ..config import load_config

    config = load_config(args.conf_files, args.conf_dir)
    launcher = config.launcher
    world = args.gpus or (launcher.num_gpus or 8) * (launcher.num_nodes if launcher.num_nodes > 0 else 1)  # -1: all
    config.resolve(world)
    tp = config.parallel.model_parallel_size
    vocab = padded_vocab_size(_config_vocab_size(config, args.vocab_size), config.model.make_vocab_size_divisible_by,
                              tp)
    parallel = {"tp": tp, "pp": config.parallel.pipeline_stages, "dp": config.derived.data_parallel_size,
                "zero_stage": config.optimizer.zero_stage, "precision": config.training.precision,
                "micro_batch": config.training.train_micro_batch_size_per_gpu,
                "checkpoint_activations": config.training.checkpoint_activations}
    return shape_from_config(config, vocab), parallel


def main(argv=None) -> None:
    args = _parse_args(argv)
    try:
        if args.conf_files:
            shape, parallel = shape_and_parallel_from_config(args)
        else:
            shape, parallel = shape_and_parallel_from_args(args)
    except ValueError as error:  # ConfigError is a ValueError: one line naming the key and the file
        raise SystemExit(f"error: {error}") from None
    print_report(shape, parallel)


if __name__ == "__main__":
    main()
