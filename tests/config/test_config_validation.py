"""Values and derived values: batch arithmetic, layer counts, parallel sizes, precision, data paths."""

import pathlib

import numpy as np
import pytest

from neox_metala.config import (
    ConfigError,
    check_data_paths,
    default_intermediate_size,
    layer_types,
    load_config,
    padded_vocab_size,
)
from neox_metala.config.derived import batch_sizes
from neox_metala.data_prep.indexed import write_index


def config_error(call) -> str:
    with pytest.raises(ConfigError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def with_extra(write_yaml, tiny_yaml, text):
    return [tiny_yaml, write_yaml("extra.yml", text)]


@pytest.mark.parametrize(
    "micro, accumulation, global_batch, dp, expected",
    [
        (2, 2, None, 4, (2, 2, 16)),  # the usual: micro and accumulation given
        (2, None, 16, 4, (2, 2, 16)),  # micro and global: accumulation derived
        (None, 2, 16, 4, (2, 2, 16)),  # accumulation and global: micro derived
        (None, None, 16, 4, (4, 1, 16)),  # global alone: accumulation 1
        (3, None, None, 4, (3, 1, 12)),  # micro alone: accumulation 1
        (2, 2, 16, 4, (2, 2, 16)),  # all three, consistent
    ],
)
def test_batch_sizes_derive_the_missing_ones(micro, accumulation, global_batch, dp, expected):
    assert batch_sizes(micro, accumulation, global_batch, dp) == expected


def test_train_batch_size_mismatch_names_all_four_numbers(write_yaml, tiny_yaml):
    paths = with_extra(write_yaml, tiny_yaml, "train_batch_size: 12\n")
    message = config_error(lambda: load_config(paths).resolve(world_size=4))
    assert message.startswith(paths[1])
    for text in (
        "train_batch_size (12)",
        "train_micro_batch_size_per_gpu (2)",
        "gradient_accumulation_steps (2)",
        "data-parallel size (4)",
        "= 16",
    ):
        assert text in message


def test_resolve_fills_derived_values(write_yaml, tiny_yaml):
    paths = with_extra(write_yaml, tiny_yaml, "model_parallel_size: 2\npipe_parallel_size: 2\nwarmup: 0.1\n")
    args = load_config(paths).resolve(world_size=8)
    assert args.derived.world_size == 8 and args.derived.data_parallel_size == 2
    assert args.training.train_batch_size == 2 * 2 * 2
    assert args.optimizer.lr_decay_iters == 100 and args.derived.warmup_iters == 10


def test_world_size_must_divide_by_model_ranks(write_yaml, tiny_yaml):
    paths = with_extra(write_yaml, tiny_yaml, "model_parallel_size: 2\n")
    message = config_error(lambda: load_config(paths).resolve(world_size=3))
    assert "world size 3" in message and "model_parallel_size (2)" in message


def test_num_layers_must_match_attention_config(write_yaml, tiny_yaml):
    path = write_yaml("bad.yml", pathlib.Path(tiny_yaml).read_text().replace("num-layers: 4", "num-layers: 6"))
    message = config_error(lambda: load_config([path]))
    assert message.startswith(path) and "expands to 4 layers" in message and "num_layers is 6" in message


def test_attention_config_expansion_and_default(write_yaml, tiny_yaml):
    assert layer_types(load_config([tiny_yaml])) == ["metala", "metala", "attention", "metala"]
    text = (
        pathlib.Path(tiny_yaml)
        .read_text()
        .replace('attention_config: [[["metala", "metala", "attention"], 1], [["metala"], 1]]\n', "")
    )
    assert layer_types(load_config([write_yaml("plain.yml", text)])) == ["metala"] * 4
    bad = text + 'attention_config: [[["global"], 4]]\n'
    message = config_error(lambda: load_config([write_yaml("global.yml", bad)]))
    assert "unknown layer type 'global'" in message and "'metala', 'attention'" in message


def test_heads_divisibility_names_both_numbers(write_yaml, tiny_yaml):
    text = pathlib.Path(tiny_yaml).read_text().replace("num_attention_heads: 4", "num_attention_heads: 6")
    message = config_error(lambda: load_config([write_yaml("heads.yml", text)]))
    assert "hidden_size (64)" in message and "num_attention_heads (6)" in message
    paths = with_extra(write_yaml, tiny_yaml, "model_parallel_size: 8\n")
    message = config_error(lambda: load_config(paths))
    assert message.startswith(paths[1]) and "num_attention_heads (4)" in message and "(8)" in message


def test_missing_required_key(write_yaml, tiny_yaml):
    text = pathlib.Path(tiny_yaml).read_text().replace("seq_length: 128\n", "")
    assert "missing required key 'seq_length'" in config_error(lambda: load_config([write_yaml("x.yml", text)]))


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("bf16: {enabled: true}", "bfloat16"),
        ("fp16: {enabled: true, type: bfloat16}", "bfloat16"),
        ("precision: fp16\nfp16: {enabled: true, loss_scale: 0}", "fp16"),
        ("fp16: {enabled: false}", "fp32"),
    ],
)
def test_precision_from_neox_blocks(write_yaml, tiny_yaml, extra, expected):
    assert load_config(with_extra(write_yaml, tiny_yaml, extra + "\n")).training.precision == expected


def test_precision_contradiction_is_an_error(write_yaml, tiny_yaml):
    paths = with_extra(write_yaml, tiny_yaml, "precision: fp16\nbf16: {enabled: true}\n")
    message = config_error(lambda: load_config(paths))
    assert "precision is 'fp16'" in message and "bf16.enabled" in message


@pytest.mark.parametrize(
    "optimizer, fragment",
    [
        ("{type: Lion, params: {lr: 1.0e-4}}", "'Adam', 'AdamW'"),
        ("{type: Adam, params: {betas: [0.9, 0.95]}}", "params.lr is required"),
        ("{type: Adam, params: {lr: 1.0e-4, beta: [0.9, 0.95]}}", "did you mean 'betas'"),
    ],
)
def test_optimizer_block_errors(write_yaml, tiny_yaml, optimizer, fragment):
    text = (
        pathlib.Path(tiny_yaml)
        .read_text()
        .replace(
            "optimizer: {type: AdamW, params: {lr: 6.0e-4, betas: [0.9, 0.95], eps: 1.0e-8}}", f"optimizer: {optimizer}"
        )
    )
    assert fragment in config_error(lambda: load_config([write_yaml("opt.yml", text)]))


def test_weight_decay_in_two_places_must_agree(write_yaml, tiny_yaml):
    text = pathlib.Path(tiny_yaml).read_text().replace("eps: 1.0e-8}", "eps: 1.0e-8, weight_decay: 0.05}")
    path = write_yaml("wd.yml", text)
    assert load_config([path]).optimizer.weight_decay == 0.05
    extra = write_yaml("extra.yml", "weight_decay: 0.1\n")
    assert "optimizer.params.weight_decay is 0.05" in config_error(lambda: load_config([path, extra]))


def test_data_weights_must_match_paths(write_yaml, tiny_yaml):
    paths = with_extra(write_yaml, tiny_yaml, "train_data_paths: [a, b]\ntrain_data_weights: [1.0]\n")
    message = config_error(lambda: load_config(paths))
    assert "train_data_weights has 1 entries but train_data_paths has 2" in message
    paths = with_extra(write_yaml, tiny_yaml, "data_path: x\ntrain_data_paths: [a]\n")
    assert "data_path and train_data_paths" in config_error(lambda: load_config(paths))


def test_check_data_paths(write_yaml, tiny_yaml, tmp_path):
    prefix = tmp_path / "corpus_text_document"
    vocab = tmp_path / "tokenizer.json"
    paths = with_extra(write_yaml, tiny_yaml, f"data_path: {prefix}\nvocab_file: {vocab}\n")
    args = load_config(paths)
    message = config_error(lambda: check_data_paths(args))
    assert message.startswith(paths[1]) and "data_path" in message and f"{prefix}.bin" in message
    write_index(f"{prefix}.idx", np.uint16, [3, 2])  # a sound shard of two documents
    (tmp_path / "corpus_text_document.bin").write_bytes(np.arange(5, dtype=np.uint16).tobytes())
    message = config_error(lambda: check_data_paths(args))
    assert "vocab_file" in message and str(vocab) in message
    vocab.write_text("{}")
    check_data_paths(args)


def test_padded_vocab_size_and_swiglu_width():
    assert padded_vocab_size(50277, 128, 1) == 50304
    assert padded_vocab_size(50277, 128, 2) == 50432  # multiple of 256
    assert padded_vocab_size(256, 128, 2) == 256
    assert default_intermediate_size(2048) == 5632  # int(8 * 2048 / 3) = 5461 -> 22 * 256
    assert default_intermediate_size(64) == 256


def test_damaged_shards_and_an_unwritable_save_are_named(write_yaml, tiny_yaml, tmp_path):
    """The start-up checks train.py runs before any GPU work (the end-to-end runs: tests/training/test_integrity.py)."""
    from neox_metala.config.data_check import check_save_writable

    prefix = tmp_path / "corpus"
    vocab = tmp_path / "tokenizer.json"
    vocab.write_text("{}")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    paths = with_extra(write_yaml, tiny_yaml, f"data_path: {prefix}\nvocab_file: {vocab}\nsave: {blocker / 'ckpt'}\n")
    args = load_config(paths)
    write_index(f"{prefix}.idx", np.uint16, [3, 2])
    (tmp_path / "corpus.bin").write_bytes(np.arange(4, dtype=np.uint16).tobytes())  # one token short
    message = config_error(lambda: check_data_paths(args))
    assert message.startswith(f"{paths[1]}: data_path: {prefix}.bin has 8 bytes but {prefix}.idx describes 10")
    (tmp_path / "corpus.bin").write_bytes(np.arange(5, dtype=np.uint16).tobytes())
    with open(f"{prefix}.idx", "r+b") as f:
        f.truncate(40)  # the header and part of the lengths
    assert f"{prefix}.idx: truncated" in config_error(lambda: check_data_paths(args))
    message = config_error(lambda: check_save_writable(args, rank=0))
    assert message.startswith(f"{paths[1]}: save: cannot write checkpoints to {str(blocker / 'ckpt')!r}")
    check_save_writable(load_config([tiny_yaml]), rank=0)  # no save: nothing to check


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("eval_tasks: piqa\n", "eval_tasks: expected a list of strings or null, got 'piqa'"),
        ("eval_tasks: [piqa, ' ']\n", "eval_tasks: a task name is empty"),
        ("eval_tasks_include_path: tasks\n", "eval_tasks_include_path is set but eval_tasks is not"),
        ("eval_tasks_limit: 100\n", "eval_tasks_limit is set but eval_tasks is not"),
        ("eval_tasks: [piqa]\neval_tasks_limit: 2.5\n", "eval_tasks_limit must be a number of documents"),
        ("eval_tasks: [piqa]\neval_tasks_limit: 0\n", "eval_tasks_limit must be a number of documents"),
    ],
)
def test_eval_tasks_values(write_yaml, tiny_yaml, text, fragment):
    paths = with_extra(write_yaml, tiny_yaml, text)
    message = config_error(lambda: load_config(paths))
    assert message.startswith(f"{paths[1]}: {fragment}"), message


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ("torch_compile_mode: fast", "torch_compile_mode must be one of default, reduce-overhead"),
        ("torch_compile_memory_budget: 0", "torch_compile_memory_budget must be in (0, 1], got 0"),
        ("torch_compile_memory_budget: 1.5", "torch_compile_memory_budget must be in (0, 1], got 1.5"),
    ],
)
def test_compile_keys_are_checked(write_yaml, tiny_yaml, extra, fragment):
    paths = with_extra(write_yaml, tiny_yaml, extra + "\n")
    message = config_error(lambda: load_config(paths))
    assert fragment in message and message.startswith(paths[-1]), message


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ("metala_core_kernel: triton", "metala_core_kernel"),
        ("metala_conv_kernel: fla", "metala_conv_kernel"),
        ("metala_epilogue_kernel: fused", "metala_epilogue_kernel"),
        (
            "metala_fused_kernels: true\nmetala_epilogue_kernel: triton",
            "metala_epilogue_kernel 'triton' has no effect with metala_fused_kernels: true",
        ),
        (
            "metala_fused_kernels: true\nmetala_core_kernel: metala",
            "metala_core_kernel 'metala' has no effect with metala_fused_kernels: true",
        ),
    ],
)
def test_metala_kernel_keys_are_checked(write_yaml, tiny_yaml, extra, fragment):
    paths = with_extra(write_yaml, tiny_yaml, extra + "\n")
    message = config_error(lambda: load_config(paths))
    assert fragment in message and message.startswith(paths[-1]), message


def test_fused_kernels_alone_load_with_the_default_core(write_yaml, tiny_yaml):
    # the default core (MetaLA's own kernels) is not the fused path's, but only a core set in a config is refused
    args = load_config(with_extra(write_yaml, tiny_yaml, "metala_fused_kernels: true\n"))
    assert args.metala.metala_fused_kernels and args.metala.metala_core_kernel == "metala"
