"""The single-rank model built on the meta device (the full shapes a checkpoint's layout change and the NeoX export
read) allocates nothing, also where CUDA is available: megatron-core's GPU allocation names the current CUDA
device itself, past `with torch.device("meta")`. On the H200 (session 10) resuming a TP=2 checkpoint on one GPU
failed there ("Cannot copy out of meta tensor"), after building the whole model on the GPU."""

import torch

from neox_metala.layers.settings import BlockSettings
from neox_metala.parallel.state import linear_config
from neox_metala.training.checkpoint_files import full_parameter_layouts, single_rank_model


def test_meta_build_allocates_nothing_where_cuda_is_available(monkeypatch):
    # Without the fix megatron-core would call torch.cuda.current_device() here (an error on a CPU machine).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    settings = BlockSettings(hidden_size=16, num_attention_heads=2, num_layers=2)
    model = single_rank_model(settings, ["metala", "attention"], 64, tied=True, device="meta")
    assert all(param.is_meta for param in model.parameters())
    layouts = full_parameter_layouts(settings, ["metala", "attention"], 64, tied=True)
    assert layouts and all(shape.numel() > 0 for shape, _ in layouts.values())


def test_gpu_allocation_stays_the_default_off_the_meta_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not linear_config().use_cpu_initialization
    with torch.device("meta"):
        assert linear_config().use_cpu_initialization
