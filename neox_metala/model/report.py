"""`python -m neox_metala.model.report`: parameters, FLOPs per token and memory per GPU of a run, before launching it.

python -m neox_metala.model.report -d configs metala-1B.yml pile_data.yml local_setup_wandb.yml
python -m neox_metala.model.report --num-layers 24 --hidden-size 2048 --tp 2 --dp 4
"""

from __future__ import annotations

import argparse
import os

from ..ops.options import MetaLAOptions
from ..shape import NORM_PARAMS_PER_CHANNEL, ModelShape, default_intermediate_size, padded_vocab_size
from .sizes import PRECISION_ALIASES, PRECISIONS, count_parameters, flops_per_token, memory_estimate


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
    gib = 2**30
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
        prog="python -m neox_metala.model.report",
        description="Parameters, FLOPs per token and memory per GPU, from a NeoX config (-d configs a.yml ...) "
        "or from explicit shape numbers.",
    )
    parser.add_argument("conf_files", nargs="*", help="NeoX YAML files (as deepy.py takes them)")
    parser.add_argument("-d", "--conf-dir", default=None, help="directory of the YAML files")
    parser.add_argument(
        "--gpus",
        type=int,
        default=None,
        help="world size for the memory estimate (default: the config's num_gpus x num_nodes, else one 8-GPU node)",
    )
    model = parser.add_argument_group("model (without a config)")
    model.add_argument("--num-layers", type=int)
    model.add_argument("--hidden-size", type=int)
    model.add_argument("--num-attention-heads", type=int, default=8)
    model.add_argument(
        "--vocab-size",
        type=int,
        default=None,
        help=f"vocabulary size before padding (default: the config's tokenizer, else "
        f"{GPT_NEOX_20B_VOCAB}, GPT-NeoX-20B's)",
    )
    model.add_argument("--seq-length", type=int, default=2048)
    model.add_argument("--intermediate-size", type=int, default=None, help="default: 256·ceil(int(8D/3)/256)")
    model.add_argument(
        "--layer-types", default="metala", help="one type for all layers, or a comma list with one entry per layer"
    )
    model.add_argument("--no-weight-tying", action="store_true", help="untied output head")
    model.add_argument("--norm", default="rmsnorm", choices=tuple(NORM_PARAMS_PER_CHANNEL))
    model.add_argument(
        "--conv-kernel-size", type=int, default=MetaLAOptions.conv_kernel_size, help="0: no short convolution"
    )
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
        num_layers=args.num_layers,
        hidden_size=args.hidden_size,
        num_attention_heads=args.num_attention_heads,
        vocab_size=padded_vocab_size(args.vocab_size or GPT_NEOX_20B_VOCAB, 128, args.tp),
        seq_length=args.seq_length,
        intermediate_size=args.intermediate_size or default_intermediate_size(args.hidden_size),
        layer_types=layer_types,
        tied_embeddings=not args.no_weight_tying,
        norm=args.norm,
        metala=MetaLAOptions(conv_kernel_size=args.conv_kernel_size or 1, short_conv=args.conv_kernel_size > 0),
    )
    parallel = {
        "tp": args.tp,
        "pp": args.pp,
        "dp": args.dp,
        "zero_stage": args.zero_stage,
        "precision": args.precision,
        "micro_batch": args.micro_batch_size,
        "checkpoint_activations": args.checkpoint_activations,
    }
    return shape, parallel


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
    vocab = padded_vocab_size(
        _config_vocab_size(config, args.vocab_size), config.model.make_vocab_size_divisible_by, tp
    )
    parallel = {
        "tp": tp,
        "pp": config.parallel.pipeline_stages,
        "dp": config.derived.data_parallel_size,
        "zero_stage": config.optimizer.zero_stage,
        "precision": config.training.precision,
        "micro_batch": config.training.train_micro_batch_size_per_gpu,
        "checkpoint_activations": config.training.checkpoint_activations,
    }
    return config.model_shape(vocab), parallel


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
