"""Where a training step's GPU time goes: torch.profiler over a few steps of our trainer (the setup of
bench/train.py: configs/metala-380M.yml with 24 layers, synthetic data), kernels summed per class.

    python bench/step_profile.py [--kinds attention metala] [--seq 2048] [--steps 3] [--out profile.json]

Classes: gemm, attention (SDPA kernels), metala core (fla's and MetaLA's own core and short-conv kernels),
elementwise (everything else: norms, activations, casts, copies, the loss, reductions), optimizer (Adam and the
engine's gradient/master-weight copies are elementwise; the multi-tensor Adam kernels are counted here),
communication (NCCL), idle (step wall time not covered by any kernel), and host syncs per step.

Where the idle time comes from: every gap between kernels is charged to the host code that launched the kernel
after it (found through the launch's correlation id in the profiler trace), when that launch came after the gap
began, i.e. the GPU waited for the host: summed per innermost and per outermost profiler op around the launch.
"""

from __future__ import annotations

import argparse
import bisect
import importlib.util
import json
import os
import tempfile
import time
from collections import defaultdict

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("bench_train", os.path.join(HERE, "train.py"))
bench_train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_train)
from kernel_timing import METALA_CORE_KERNELS  # noqa: E402  (bench/train.py put the repository on sys.path)

CLASSES = (
    ("communication", ("nccl",)),
    ("optimizer", ("adam", "multi_tensor", "foreach")),
    ("attention", ("flash", "fmha", "sdpa", "attention", "cudnn_generated")),
    ("gemm", ("gemm", "nvjet", "cutlass", "xmma", "cublas", "matmul", "splitk", "sm90_")),
    # fla's kernels, then MetaLA's own (ops/metala_core_kernels.py, ops/short_conv_kernels.py)
    ("metala core", ("chunk", "gla", "recurrent", "conv1d", "causal_conv", "cumsum", "fwd_kernel", "bwd_kernel")),
    ("metala core", ("conv_forward_kernel", "conv_backward_kernel", *METALA_CORE_KERNELS)),
)


def kernel_class(name: str) -> str:
    lowered = name.lower()
    for label, keys in CLASSES:
        if any(key in lowered for key in keys):
            return label
    return "elementwise"


def busy_union(intervals) -> float:
    """Time covered by at least one kernel (kernels on several streams overlap)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def idle_attribution(trace_file: str, steps: int, top: int) -> dict:
    """GPU idle gaps charged to the host ops that launched the kernel ending each gap (see the module docstring); and
    each elementwise kernel's time charged to the ops around its launch."""
    with open(trace_file) as f:
        events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
    device = sorted(
        (e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")), key=lambda e: e["ts"]
    )
    launches = {
        e["args"]["correlation"]: e
        for e in events
        if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})
    }
    ops_by_thread = defaultdict(list)
    for e in events:
        if e.get("cat") == "cpu_op":
            ops_by_thread[e["tid"]].append(e)
    for ops in ops_by_thread.values():
        ops.sort(key=lambda e: e["ts"])
    starts_by_thread = {tid: [e["ts"] for e in ops] for tid, ops in ops_by_thread.items()}

    def enclosing(tid, ts):  # profiler ops around a moment on one thread, outermost first
        ops, starts = ops_by_thread.get(tid, []), starts_by_thread.get(tid, [])
        index = bisect.bisect_right(starts, ts)
        chain = [e for e in ops[max(0, index - 4000) : index] if e["ts"] + e["dur"] >= ts]
        return chain or [{"name": "(no profiler op)"}]

    inner, outer = defaultdict(float), defaultdict(float)
    launched_by, launched_count = defaultdict(float), defaultdict(int)  # elementwise kernels, by the ops around
    waited, end = 0.0, None
    for kernel in device:
        launch = launches.get(kernel.get("args", {}).get("correlation"))
        chain = None  # the ops around the launch, looked up once per kernel when needed
        if launch is not None and kernel_class(kernel["name"]) == "elementwise":
            chain = enclosing(launch["tid"], launch["ts"])
            key = " <- ".join([kernel["name"][:48], *(e["name"][:48] for e in chain[-1:-4:-1])])
            launched_by[key] += kernel["dur"]
            launched_count[key] += 1
        if end is not None and kernel["ts"] > end:
            gap = kernel["ts"] - end
            if launch is not None and launch["ts"] > end:
                chain = chain or enclosing(launch["tid"], launch["ts"])
                inner[chain[-1]["name"][:90]] += gap
                outer[chain[0]["name"][:90]] += gap
            else:  # launched before the gap: waited on something else (another stream, an event)
                waited += gap
        end = max(end or kernel["ts"], kernel["ts"] + kernel["dur"])

    def table(sums):
        return [(name, us / 1e3 / steps) for name, us in sorted(sums.items(), key=lambda kv: -kv[1])[:top]]

    return {
        "by_innermost_op_ms_per_step": table(inner),
        "by_outermost_op_ms_per_step": table(outer),
        "launched_before_gap_ms_per_step": waited / 1e3 / steps,
        # which host ops start the elementwise kernels (kernel <- innermost op <- its parents): ms, launches per step
        "elementwise_by_launching_op": [(name, ms, launched_count[name] / steps) for name, ms in table(launched_by)],
    }


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def profile_kind(kind, options, directory) -> dict:
    from torch.profiler import ProfilerActivity, profile

    seq = options.seq
    options.iters = options.warm + options.steps + 1
    tokens = (options.iters + 2) * bench_train.TOKENS_PER_MICRO_BATCH * options.accumulation
    data = bench_train.synthetic_data(directory, tokens, seq)
    args = bench_train.load_config([bench_train.config_file(directory, kind, seq, data, options)]).resolve(1)
    trainer = bench_train.Trainer(args)
    try:
        for _ in range(options.warm):
            trainer.train_step()
        synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            start = time.perf_counter()
            for _ in range(options.steps):
                trainer.train_step()
            synchronize()
            wall = (time.perf_counter() - start) / options.steps
    finally:
        trainer.train_stream.close()
    trace_file = os.path.join(directory, f"trace-{kind}.json")
    prof.export_chrome_trace(trace_file)
    # GPU-side user annotations (the optimizer's `Optimizer.step#AdamW.step` range: 2.97 ms in session 15's table)
    # span kernels counted on their own: not kernels
    events = [
        e
        for e in prof.events()
        if e.device_type == torch.autograd.DeviceType.CUDA and not getattr(e, "is_user_annotation", False)
    ]
    per_class, per_kernel, calls, intervals = {}, {}, defaultdict(int), []
    for e in events:
        us = e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
        label = kernel_class(e.name)
        per_class[label] = per_class.get(label, 0.0) + us
        per_kernel[e.name] = per_kernel.get(e.name, 0.0) + us
        calls[e.name] += 1
        intervals.append((e.time_range.start, e.time_range.end))
    busy_ms = busy_union(intervals) / 1e3 / options.steps
    syncs = sum(
        1
        for e in prof.events()
        if e.device_type == torch.autograd.DeviceType.CPU
        and e.name in ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
    )
    cpu_ops = sorted(
        ((e.key, e.self_cpu_time_total, e.count) for e in prof.key_averages() if e.self_cpu_time_total > 0),
        key=lambda kv: -kv[1],
    )[: options.top]
    table = {label: us / 1e3 / options.steps for label, us in sorted(per_class.items(), key=lambda kv: -kv[1])}
    top = sorted(per_kernel.items(), key=lambda kv: -kv[1])[: options.top]
    result = {
        "wall_ms_per_step": wall * 1e3,
        "kernel_ms_per_step": table,
        "idle_ms_per_step": max(0.0, wall * 1e3 - busy_ms),
        "host_syncs_per_step": syncs / options.steps,
        "kernels_per_step": len(events) / options.steps,
        "tokens_per_step": args.training.train_batch_size * seq,
        # kernel, ms and launches per step (ms / launches: the time of one launch, to set against its byte floor)
        "top_kernels_ms_per_step": [
            (name[:120], us / 1e3 / options.steps, calls[name] / options.steps) for name, us in top
        ],
        # where the host's time goes (a GPU left idle waits for it): op, self ms and calls per step
        "top_cpu_ms_per_step": [
            (name[:90], us / 1e3 / options.steps, count / options.steps) for name, us, count in cpu_ops
        ],
        "idle_by_host": idle_attribution(trace_file, options.steps, options.top),
    }
    os.remove(trace_file)
    del trainer
    torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=["attention", "metala"])
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--accumulation", type=int, default=4)
    parser.add_argument("--warm", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true")
    bench_train.add_set_argument(parser)
    options = parser.parse_args()
    options.log_interval = 1000
    os.environ.setdefault("WANDB_MODE", "disabled")
    results = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "seq": options.seq,
    }
    with tempfile.TemporaryDirectory() as directory:
        for kind in options.kinds:
            r = results[kind] = profile_kind(kind, options, directory)
            wall = r["wall_ms_per_step"]
            print(
                f"== {kind} T={options.seq}: {wall:.1f} ms/step, {r['tokens_per_step'] / wall * 1e3 / 1e3:.1f} k "
                f"tok/s, host syncs/step {r['host_syncs_per_step']:.0f}, kernels/step {r['kernels_per_step']:.0f}"
            )
            for label, ms in [*r["kernel_ms_per_step"].items(), ("idle", r["idle_ms_per_step"])]:
                print(f"   {label:<14} {ms:8.1f} ms  {100 * ms / wall:5.1f}%")
            for name, ms, launches in r["top_kernels_ms_per_step"]:
                print(f"      {ms:8.2f} ms  {launches:5.0f}x  {name}")
            print("   host (self time):")
            for name, ms, calls in r["top_cpu_ms_per_step"]:
                print(f"      {ms:8.2f} ms  {calls:7.0f} calls  {name}")
            idle = r["idle_by_host"]
            for title in ("by_innermost_op_ms_per_step", "by_outermost_op_ms_per_step"):
                print(f"   idle, {title.replace('_', ' ')}:")
                for name, ms in idle[title]:
                    print(f"      {ms:8.2f} ms  {name}")
            print(f"   idle, kernel launched before the gap: {idle['launched_before_gap_ms_per_step']:.2f} ms")
            print("   elementwise kernels by the host ops that launched them:")
            for name, ms, launches in idle["elementwise_by_launching_op"]:
                print(f"      {ms:8.2f} ms  {launches:5.0f}x  {name}")
    if options.out:
        with open(options.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
