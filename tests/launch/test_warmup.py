"""The kernel cache and warm-up (neox_metala.warmup) on CPU: where the caches go, which shapes a rank compiles
for, and that the warm-up drives the same ops a MetaLA layer calls (the fla kernels themselves are GPU-only:
tests/training/test_gpu_runs.py times them)."""

from __future__ import annotations

import subprocess
import sys

import torch

from neox_metala import warmup
from neox_metala.config import load_config


def test_cache_folder_from_key_then_variable_then_default(monkeypatch, tmp_path):
    for name in ("TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_AUTOTUNING", warmup.FOLDER_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert warmup.use_kernel_cache(None) == str(tmp_path / "home" / ".cache" / "neox-metala" / "kernels")
    monkeypatch.delenv("TRITON_CACHE_DIR")
    monkeypatch.setenv(warmup.FOLDER_VARIABLE, str(tmp_path / "from-env"))
    assert warmup.use_kernel_cache(None) == str(tmp_path / "from-env")
    monkeypatch.delenv("TRITON_CACHE_DIR")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    folder = warmup.use_kernel_cache(str(tmp_path / "from-key"))
    assert folder == str(tmp_path / "from-key")
    import os

    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "from-key" / "triton")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "from-key" / "inductor")
    assert os.environ["TRITON_CACHE_AUTOTUNING"] == "1"  # autotuning results kept with the kernels
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "users-own"))  # set by the user: left alone
    warmup.use_kernel_cache(str(tmp_path / "from-key"))
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "users-own")


def test_unusable_cache_folder_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    try:
        warmup.use_kernel_cache(str(blocker / "kernels"))
    except OSError as error:
        assert str(blocker / "kernels") in str(error) and "kernel_cache_dir" in str(error)
    else:
        raise AssertionError("no error for a folder under a file")


def test_shapes_are_per_rank(tiny_yaml, write_yaml):
    layout = write_yaml("layout.yml", "model_parallel_size: 2\nprecision: bfloat16\n")
    args = load_config([tiny_yaml, layout]).resolve(world_size=2)
    shapes = warmup.MixerShapes.of(args)
    assert shapes.heads_per_rank == args.model.num_attention_heads // 2 and shapes.tensor_parallel == 2
    assert shapes.dtype == torch.bfloat16 and shapes.seq_length == args.model.seq_length
    assert warmup.MixerShapes.from_json(shapes.to_json()) == shapes
    assert not shapes.compiles_kernels(torch.device("cpu"))  # nothing to compile without a GPU


def test_warm_up_runs_a_layers_ops_forward_and_backward(tiny_yaml):
    """On CPU the same function runs the chunked path: it must build inputs of the shapes the mixer passes."""
    args = load_config([tiny_yaml]).resolve(world_size=1)
    warmup.run_mixer_kernels(warmup.MixerShapes.of(args), torch.device("cpu"))


def test_command_without_a_gpu_says_so(tiny_yaml, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "neox_metala.warmup", "-d", str(tmp_path), "tiny.yml"],
        capture_output=True,
        text=True,
        env={"DS_ACCELERATOR": "cpu", "PATH": "/usr/bin"},
    )
    assert result.returncode == 2 and "no CUDA GPU is visible" in result.stderr, result.stderr[-2000:]
