"""MetaLA's core kernels (ops/metala_core_triton.py) under Nsight Compute: one forward + backward at a chosen shape,
after warm-up runs that let the autotuners pick their configurations, between cudaProfilerStart and Stop, so that
`ncu --profile-from-start off` profiles exactly the kernels of one step. Default shape: bench/layer.py's block at
T = 2048 (B32, H16, K64, V128, bf16), where the core takes ~4.5 ms of a ~14.8 ms block.

    ncu --clock-control none --profile-from-start off --section SpeedOfLight --section Occupancy \\
        --section WarpStateStats --csv --page details python3 bench/core_ncu.py [--case 32x2048] [--keep-states]

With --timings (and without ncu, whose counters and torch's profiler exclude each other) it prints each kernel's
time from torch's profiler instead, and the step's median time (CUDA events, L2 flushed). With --candidates
KERNEL=I,J ... it times bench/core_configs.py's candidates I, J of each KERNEL in one process instead, one at a time,
the other kernels as the shipped autotuners pick them: per candidate the step's median and that kernel's time per
step, in --rounds rounds of alternating order (a drift of the GPU's clocks shows as a difference between rounds).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala import warmup  # noqa: E402
from neox_metala.ops import metala_core_chains, metala_core_gluon, metala_core_triton  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import core as core_bench  # noqa: E402
from kernel_timing import flip_switch, median_ms  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", default="32x2048", help="BATCHxSEQ")
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--keep-states", action="store_true", help="the backward reads the forward's states")
    parser.add_argument(
        "--flip",
        nargs="*",
        default=[],
        help="metala_core_triton's or metala_core_gluon's booleans to turn the other way, or NAME=VALUE",
    )
    parser.add_argument("--timings", action="store_true", help="kernel times by torch's profiler (not under ncu)")
    parser.add_argument(
        "--chunk-size", type=int, default=metala_core_triton.CHUNK_SIZE,
        help="tokens per chunk (a power of 2, at least 16; the model's is 64)",
    )  # fmt: skip
    parser.add_argument(
        "--accumulate", action="store_true",
        help="the backward adds into given gradients, as the one-op mixer's does (ops/mixer_op.py: the gradient "
        "kernels' ACCUMULATE builds, which the model runs with self-augmentation)",
    )  # fmt: skip
    parser.add_argument(
        "--augment", action="store_true",
        help="self-augmentation's terms of dq and d logits formed by the qk kernel from da, as the model's backward "
        "has them (ops/mixer_op.py's CORE_AUG; with --accumulate then only dv is added to); the Gluon kernel's launch",
    )  # fmt: skip
    parser.add_argument("--candidates", nargs="+", help="KERNEL=I,J ...: time core_configs.CANDIDATES[KERNEL][I]")
    parser.add_argument("--rounds", type=int, default=2, help="with --candidates: rounds, each in the other order")
    args = parser.parse_args()
    warmup.use_kernel_cache(None)
    for flag in args.flip:
        flip_switch(flag, metala_core_triton, metala_core_chains, metala_core_gluon)
    batch, seq = (int(x) for x in args.case.split("x"))
    q, v, logits, _, _, d_out = core_bench.draw(batch, seq, args.heads, 64, 128, torch.bfloat16, "cuda")
    scale, normalizer = core_bench.SCALE, core_bench.NORMALIZER

    grads = core_bench.zero_gradients(q, v) if args.accumulate else None  # what the backward adds into
    gen = torch.Generator(device="cuda").manual_seed(1)
    augmentation = (
        (torch.randn(q.shape[:3], device="cuda", generator=gen), torch.randn(q.shape[2] * 64, device="cuda") * 0.1)
        if args.augment
        else None
    )

    def step():
        out, states = metala_core_triton.metala_core_fwd(
            q, logits, v, scale, normalizer, args.chunk_size, keep_states=args.keep_states
        )
        return out, metala_core_triton.metala_core_bwd(
            q, logits, v, scale, normalizer, d_out, states, args.chunk_size, grads=grads, accumulate=args.accumulate,
            augmentation=augmentation,
        )  # fmt: skip

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    settings = f"flips {args.flip} keep_states {args.keep_states} accumulate {args.accumulate} augment {args.augment}"
    print(f"core f+b B{batch} T{seq} H{args.heads} chunks of {args.chunk_size} {settings}", flush=True)
    if args.candidates:
        jobs = [
            (kernel, int(i))
            for kernel, _, indices in (c.partition("=") for c in args.candidates)
            for i in indices.split(",")
        ]
        time_candidates(step, jobs, args.rounds)
        return
    if args.timings:
        print(f"core f+b median {median_ms(step, 3, 20):.3f} ms", flush=True)
        profile = profiled(step)
        print(profile.key_averages().table(sort_by="cuda_time_total", row_limit=12))
        launches = [e for e in profile.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        for name in dict.fromkeys(e.name for e in launches):  # the first step's launches of each, in order
            times = [e.time_range.elapsed_us() for e in launches if e.name == name]
            print(f"{name}: " + ", ".join(f"{t:.1f}" for t in times[: len(times) // PROFILED_STEPS]) + " us")
        return
    torch.cuda.cudart().cudaProfilerStart()
    step()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()


PROFILED_STEPS = 5


def profiled(step):
    """torch's profiler (CUDA activity) over PROFILED_STEPS steps."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
        for _ in range(PROFILED_STEPS):
            step()
        torch.cuda.synchronize()
    return profile


def kernel_us(step, kernel: str) -> float:
    """Microseconds per step of the Triton kernel `kernel` (its function's name; all its launches in a step, e.g. one
    per batch slice of the backward)."""
    averages = profiled(step).key_averages()
    return sum(e.device_time_total for e in averages if e.key == kernel) / PROFILED_STEPS


def time_candidates(step, jobs: list[tuple[str, int]], rounds: int) -> None:
    """Each (kernel, candidate index) of `jobs` forced in turn (bench/core_configs.py's `force`), then timed."""
    import core_configs

    core_configs.tune_shipped(step)
    for round_ in range(rounds):
        for kernel, index in jobs if round_ % 2 == 0 else jobs[::-1]:
            config = core_configs.CANDIDATES[kernel][index]
            function = core_configs._SHIPPED()[kernel].fn.__name__
            core_configs.force({kernel: config})
            for _ in range(3):  # compiles it
                step()
            ms, us = median_ms(step, 3, 20), kernel_us(step, function)
            print(f"round {round_ + 1} {kernel} #{index} {config}: core f+b {ms:.3f} ms, {function} {us:.1f} us/step")


if __name__ == "__main__":
    main()
