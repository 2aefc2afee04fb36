"""What the per-kernel benchmarks (bench/core.py, bench/conv.py, bench/epilogue.py) share: their command line, the
timing of one GPU kernel call (the median of CUDA-event times with the L2 cache flushed before each run), the copy
bandwidth that byte floors are measured against, and how far one implementation's outputs are from another's.
Without a GPU (the benchmarks' --smoke runs through the Triton interpreter) a call is timed once by the clock. The
importing script puts the repository on sys.path."""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from neox_metala import warmup

METALA_CORE_KERNELS = (
    "state_updates", "state_grad_updates", "scan_kernel", "output_kernel", "chunk_grads", "chunk_dv", "decay_rows",
    "chained_kernel", "chained_grads_kernel", "qk_grads_kernel",
)  # fmt: skip
"""Name parts that mark MetaLA's own core kernels (ops/metala_core_*kernels.py, the Gluon qk-gradient kernel) in a
profile, for the benchmarks' breakdowns by class (bench/layer.py, bench/step_profile.py). The Gluon kernel went
unmatched from session 48 to 51, so that bench/layer.py counted its 0.75-0.80 ms as elementwise;
tests/ops/test_core_kernel_names.py checks every kernel of those modules against this."""


def parse_args(description: str, default_cases: list[str], cases_help: str) -> argparse.Namespace:
    """--cases, --runs, --warmup, --smoke, checked: --smoke needs the Triton interpreter, else a GPU, on which the
    run uses the trainer's kernel cache (what earlier runs compiled and tuned: fla's tuning takes minutes)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=default_cases, help=cases_help)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny fp32 shape on the CPU (needs TRITON_INTERPRET=1)")
    args = parser.parse_args()
    if args.smoke:
        if os.environ.get("TRITON_INTERPRET") != "1":
            raise SystemExit("--smoke runs the kernels in Triton's interpreter: set TRITON_INTERPRET=1")
    else:
        if not torch.cuda.is_available():
            raise SystemExit("needs a CUDA GPU (or --smoke with TRITON_INTERPRET=1)")
        warmup.use_kernel_cache(None)
        print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    return args


def median_ms(call, warmup: int, runs: int, cuda: bool = True) -> float:
    if not cuda:
        start = time.perf_counter()
        call()
        return (time.perf_counter() - start) * 1e3
    flush = torch.empty(512 * 2**20, dtype=torch.uint8, device="cuda")  # more than an H200's L2
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        flush.random_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def relative_differences(names, ours, theirs) -> dict[str, float]:
    """{name: ‖ours − theirs‖ / ‖theirs‖} over paired outputs, in fp32."""
    return {
        name: ((mine.float() - other.float()).norm() / other.float().norm().clamp_min(1e-30)).item()
        for name, mine, other in zip(names, ours, theirs)
    }


def copy_bandwidth(cuda: bool = True) -> float:
    """Bytes/s of a large device copy (read + write counted); the H200's nominal figure without a GPU."""
    if not cuda:
        return 4.8e12
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    return 2 * src.numel() / (median_ms(lambda: dst.copy_(src), 3, 10) / 1e3)


def flip_switch(spec: str, *modules) -> None:
    """A benchmark's --flip: NAME turns the boolean NAME of the first of `modules` that has it the other way;
    NAME=VALUE sets a string switch (e.g. metala_core_triton.WHOLE_BATCH_STATE_GRADS=0), which `not` would only
    turn into False."""
    name, _, value = spec.partition("=")
    module = next((m for m in modules if hasattr(m, name)), None)
    if module is None:
        raise SystemExit(f"--flip {spec}: no switch {name} in {', '.join(m.__name__ for m in modules)}")
    current = getattr(module, name)
    if not value and not isinstance(current, bool):
        raise SystemExit(f"--flip {spec}: {name} is {current!r}, not a boolean; give its value as {name}=VALUE")
    setattr(module, name, value or not current)
