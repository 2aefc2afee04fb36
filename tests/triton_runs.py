"""Where the Triton kernel tests run: natively on a CUDA GPU, or on the CPU through Triton's interpreter
(TRITON_INTERPRET=1 set before the run). They skip without triton, and on a CPU without the interpreter (the
project's CPU suite)."""

import contextlib
import importlib.util
import os

import pytest
import torch

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
DEVICE = "cuda" if torch.cuda.is_available() and not INTERPRETED else "cpu"
MARKS = [
    pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton"),
    pytest.mark.skipif(DEVICE == "cpu" and not INTERPRETED, reason="needs a CUDA GPU or TRITON_INTERPRET=1"),
]
# two V blocks per program of the chained forward (its V_STEPS; bench/core_configs.py's "chained" #1, capped for three
# programs per SM), as force_config's arguments: the interpreter's blocks of 16, so that its V = 32 makes one pair
CHAINED_PAIRS = ({"BV": 16 if DEVICE == "cpu" else 64, "V_STEPS": 2}, 4, 1, 168)
# norm-relative error bounds of a kernel whose fp32 math is rounded once to its inputs' dtype (`relative_error`)
ONE_ROUNDING = {torch.float32: 1e-6, torch.bfloat16: 2**-8, torch.float16: 2**-11}


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """‖got − want‖ / ‖want‖ in fp64, `want` an fp64 reference."""
    return ((got.double() - want).norm() / want.norm()).item()


def record_launches(monkeypatch, *modules) -> list:
    """Every launch that these ops modules make, as (kernel, args, kwargs), each still run through
    ops/triton_launch.py; metala_core_triton's include its chained launches (ops/metala_core_chains.py)."""
    from neox_metala.ops import metala_core_chains, metala_core_triton, triton_launch

    if metala_core_triton in modules:
        modules = (*modules, metala_core_chains)
    calls = []

    def recording_launch(kernel, grid, *args, **kwargs):
        triton_launch.launch(kernel, grid, *args, **kwargs)
        calls.append((kernel, args, kwargs))

    for module in modules:
        monkeypatch.setattr(module, "launch", recording_launch)
    return calls


@contextlib.contextmanager
def every_config_timed_twice(monkeypatch):
    """MetaLA's core kernels with all of their autotune configurations, the autotuner's timing path run on the real
    buffers twice per configuration (the interpreter cannot time: each later one is reported faster, so the last
    is kept); yields the list of timed calls. What a kernel writes in place must be restored between the runs
    (restore_value), or the second run works on the first one's result."""
    import triton.runtime.autotuner as autotuner

    from neox_metala.ops import metala_core_configs

    timed = []

    def run_twice(kernel_call, quantiles):
        kernel_call()
        kernel_call()
        timed.append(kernel_call)
        return [1.0 / len(timed)] * len(quantiles)

    monkeypatch.setattr(metala_core_configs, "FIRST_CONFIG_ONLY", False)
    monkeypatch.setattr(autotuner.Autotuner, "do_bench", property(lambda self: run_twice))
    metala_core_configs.kernels.cache_clear()
    try:
        yield timed
    finally:
        metala_core_configs.kernels.cache_clear()  # the other tests' single configurations again


def force_config(monkeypatch, kernel: str, constexprs: dict, warps: int = 4, stages: int = 1, maxnreg=None):
    """MetaLA's core launching one configuration of `kernel` (a name in metala_core_configs.kernels()), the others
    as the shipped autotuners choose."""
    import triton

    from neox_metala.ops import metala_core_triton

    kernels = dict(metala_core_triton._kernels())  # with any configuration forced before
    config = triton.Config(constexprs, num_warps=warps, num_stages=stages, maxnreg=maxnreg)
    kernels[kernel] = triton.autotune([config], key=kernels[kernel].keys)(kernels[kernel].fn)
    monkeypatch.setattr(metala_core_triton, "_kernels", lambda: kernels)
