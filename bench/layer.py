"""Token mixer and full layer, forward + backward, MetaLA against the Transformer++ attention layer, in one process.

    python bench/layer.py [--hidden 2048 1024] [--seq 2048 8192 32768] [--tokens 65536] [--out results.json]
                          [--interleave]

Kinds: metala (the token mixer with the config defaults: MetaLA's own core and short-conv kernels), metala_fused
(metala_fused_kernels: true, fla's core), attention (SDPA), and the whole layers metala_layer / attention_layer;
each compiled as the trainer compiles a block (torch.compile, dynamic=False; MetaLA with the trainer's activation
memory budget). For each hidden size and sequence length (batch = tokens / seq): median f+b time over many runs
timed with CUDA events after warm-up, fresh random inputs rotated among several sets, L2 flushed before every run (one
kind after another, or with --interleave the kinds' runs in turns, so that a change of the GPU's clock meets all alike);
tokens/s; peak memory above what the inputs and weights hold; the ratio MetaLA / attention. Also MetaLA's own core
alone against its byte floor (bench/core_floor.py: as the core op and as the block calls it, over a device copy
bandwidth measured in this run), and the MetaLA block's kernel time by class from a kernel-level profile: GEMM, core,
short conv, elementwise (the rest).
Uses the trainer's kernel cache (fla's tuning for the fused path takes minutes otherwise).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala import parallel, warmup  # noqa: E402
from neox_metala.layers.attention import ParallelSelfAttention  # noqa: E402
from neox_metala.layers.block import ParallelBlock  # noqa: E402
from neox_metala.layers.mixer import MetaLAMixer  # noqa: E402
from neox_metala.layers.settings import BlockSettings  # noqa: E402
from neox_metala.ops.options import MetaLAOptions  # noqa: E402
from neox_metala.training.engine import default_memory_budget  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from core_floor import core_floor  # noqa: E402
from kernel_timing import METALA_CORE_KERNELS, flip_switch  # noqa: E402

HEAD_K_DIM = 64  # MetaLA per-head q/key width; attention then has hidden/heads = 128 per head
INPUT_SETS = 3
GEMM_MARKERS = ("gemm", "xmma", "cutlass", "nvjet", "cublas", "sm90_", "wgmma")
# fla's core kernels (the fused path), then MetaLA's own (ops/metala_core_kernels.py, metala_core_grad_kernels.py)
CORE_MARKERS = ("chunk_gla", "chunk_fwd", "chunk_bwd", "chunk_local_cumsum", "gla_", *METALA_CORE_KERNELS)
CONV_MARKERS = ("conv_forward_kernel", "conv_backward_kernel", "causal_conv")


def settings_for(hidden: int) -> BlockSettings:
    return BlockSettings(
        hidden_size=hidden,
        num_attention_heads=hidden // (2 * HEAD_K_DIM),
        num_layers=24,
        norm="rmsnorm",
        params_dtype=torch.bfloat16,
    )


def build(kind: str, hidden: int):
    settings = settings_for(hidden)
    if kind == "metala_fused":  # metala_fused_kernels: true
        settings = dataclasses.replace(settings, metala=MetaLAOptions(fused_kernels=True))
    module = {
        "metala": lambda: MetaLAMixer(settings, 0),
        "metala_fused": lambda: MetaLAMixer(settings, 0),
        "attention": lambda: ParallelSelfAttention(settings, 0),
        "metala_layer": lambda: ParallelBlock(settings, 0, "metala"),
        "attention_layer": lambda: ParallelBlock(settings, 0, "attention"),
    }[kind]()
    module = module.cuda().to(torch.bfloat16)
    # read when the graph is first partitioned (the first call, inside Timer.measure's warm-up)
    budget = default_memory_budget(kind.startswith("metala"), settings.metala)
    torch._functorch.config.activation_memory_budget = budget
    if isinstance(module, ParallelBlock):
        module.compile(None)
        return module
    return torch.compile(module, dynamic=False)


class Timer:
    """f+b of a module on (seq, batch, hidden) inputs: median milliseconds and peak extra memory."""

    def __init__(self, warmup: int, runs: int):
        self.warmup, self.runs = warmup, runs
        self.flush = torch.empty(512 * 2**20, dtype=torch.uint8, device="cuda")  # > H100/H200 L2 (50-60 MB)

    def inputs(self, seq, batch, hidden):
        return [
            (
                torch.randn(seq, batch, hidden, device="cuda", dtype=torch.bfloat16).requires_grad_(),
                torch.randn(seq, batch, hidden, device="cuda", dtype=torch.bfloat16),
            )
            for _ in range(INPUT_SETS)
        ]

    @staticmethod
    def step(module, x, grad):
        """One f+b as a block runs it inside a model: the parameters' gradients into .grad, the input's returned as
        autograd produced it (in a model it flows on into the block below, whatever its layout). A leaf input's
        .grad would instead be copied into the leaf's (seq, batch) layout: for MetaLA, whose conv writes it
        batch-first, a strided 0.35 ms copy per f+b at hidden 2048 (session 15's breakdown) that training never runs."""
        out = module(x)
        params = [p for p in module.parameters() if p.requires_grad]
        grads = torch.autograd.grad(out, [x, *params], grad)
        for param, param_grad in zip(params, grads[1:]):
            param.grad = param_grad if param.grad is None else param.grad + param_grad

    def warm(self, module, seq, batch, hidden) -> list:
        """The module's input sets, after its warm-up steps (the first one compiles it)."""
        sets = self.inputs(seq, batch, hidden)
        for i in range(self.warmup):
            self.step(module, *sets[i % INPUT_SETS])
        return sets

    def timed(self, module, x, grad) -> float:
        """Milliseconds of one f+b, from device memory (L2 flushed first)."""
        module.zero_grad(set_to_none=True)
        self.flush.random_()  # evict L2: every run starts from device memory
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        self.step(module, x, grad)
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def summary(self, module, sets, times, seq, batch) -> dict:
        """The timed runs' median and spread, and one more step's peak memory and saved bytes."""
        module.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        self.step(module, *sets[0])
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        return {
            "ms": statistics.median(times),
            "spread_ms": max(times) - min(times),
            "peak_gb": peak / 1e9,
            "saved_gb": saved_for_backward(module, sets[0][0]) / 1e9,
            "tokens_per_s": seq * batch / (statistics.median(times) / 1e3),
        }

    def measure(self, module, seq, batch, hidden) -> dict:
        sets = self.warm(module, seq, batch, hidden)
        times = [self.timed(module, *sets[i % INPUT_SETS]) for i in range(self.runs)]
        return self.summary(module, sets, times, seq, batch)

    def measure_interleaved(self, modules: dict, sets: dict, seq, batch) -> dict:
        """`measure` of every module (each warmed, its input sets in `sets`), their timed runs taken in turns: each
        kind's median then covers the same stretch of time. One kind after another, the GPU's clock changed between
        them (session 37: every kernel of a block 5-9% slower in some runs, the ratio 0.83-0.92 by the runs' mix)."""
        times = {kind: [] for kind in modules}
        for i in range(self.runs):
            for kind, module in modules.items():
                times[kind].append(self.timed(module, *sets[kind][i % INPUT_SETS]))
        return {kind: self.summary(module, sets[kind], times[kind], seq, batch) for kind, module in modules.items()}


def saved_for_backward(module, x) -> int:
    """Bytes that the forward keeps for the backward beyond the input and the parameters (each storage once): the
    part of the peak that the partitioner and the ops' saved tensors decide."""
    known = {t.untyped_storage().data_ptr() for t in (x, *module.parameters())}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in known:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = module(x)
    del out
    return sum(storages.values())


def copy_bandwidth() -> float:
    """Bytes/s of a large device-to-device copy (read + write counted)."""
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(10):
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return 2 * src.numel() / (statistics.median(times) / 1e3)


def kernel_breakdown(module, seq, batch, hidden, timer: Timer, trace: str | None = None) -> dict:
    """Share of GPU time in GEMMs, the core, the short conv, and everything else (elementwise, copies); with trace,
    the profiled steps' timeline written there (chrome://tracing JSON) to find where the GPU waits."""
    from torch.profiler import ProfilerActivity, profile

    x, grad = timer.inputs(seq, batch, hidden)[0]

    def step():  # as the timed runs: gradients cleared, so no run adds into the last one's (an add per tensor)
        module.zero_grad(set_to_none=True)
        Timer.step(module, x, grad)

    step()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            step()
        torch.cuda.synchronize()
    if trace:
        prof.export_chrome_trace(trace)
    totals = {"gemm": 0.0, "core": 0.0, "conv": 0.0, "elementwise": 0.0}
    names = {}
    for event in prof.key_averages():
        device_us = getattr(event, "self_device_time_total", 0)  # kernels only: their ops have no self time
        if device_us <= 0 or event.key.startswith("ProfilerStep"):
            continue
        key = event.key.lower()
        kind = next(
            (
                label
                for label, markers in (("gemm", GEMM_MARKERS), ("core", CORE_MARKERS), ("conv", CONV_MARKERS))
                if any(m in key for m in markers)
            ),
            "elementwise",
        )
        totals[kind] += device_us
        names[event.key] = (kind, device_us / 5 / 1e3)
    total = sum(totals.values())
    top = sorted(names.items(), key=lambda item: -item[1][1])[:25]
    return {
        "share": {k: v / total for k, v in totals.items()},
        "ms_per_step": total / 5 / 1e3,
        "top_kernels": [(name, kind, round(ms, 3)) for name, (kind, ms) in top],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[2048, 1024])
    parser.add_argument("--seq", type=int, nargs="+", default=[2048, 8192, 32768])
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--kinds", nargs="+", default=["metala", "metala_fused", "attention", "metala_layer", "attention_layer"]
    )
    parser.add_argument("--out", default=None)
    parser.add_argument("--trace", default=None, help="folder for each block's profiled timeline (KIND-T.json)")
    parser.add_argument(
        "--interleave", action="store_true",
        help="time the kinds' runs in turns (all of them built at once) instead of one kind after another",
    )  # fmt: skip
    parser.add_argument(
        "--stored-rows-mib", type=int, default=None,
        help="MetaLA's core backward in batch slices of this many MiB of stored decay rows (STORED_ROWS_BYTES)",
    )  # fmt: skip
    parser.add_argument(
        "--flip", nargs="*", default=[],
        help="switches of metala_core_triton (STORED_DECAY_ROWS, FAST_EXP) or mixer_op (CORE_AUG, CORE_A) to turn the "
        "other way; NAME=VALUE sets a string switch (WHOLE_BATCH_STATE_GRADS=0) or a number of metala_core_chains "
        "(CARRIED_BYTES=16777216)",
    )  # fmt: skip
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="MetaLA's core kernels' chunk (metala_core_op.CHUNK_SIZE, 64)"
    )
    args = parser.parse_args()
    if args.stored_rows_mib is not None or args.flip or args.chunk_size:
        from neox_metala.ops import metala_core_chains, metala_core_gluon, metala_core_op, metala_core_triton, mixer_op

        # Inductor's caches key a compiled graph by its code, not by these globals: a run with another chunk size took
        # a graph whose shape checks held the default's (session 28), so compile afresh
        torch._inductor.config.force_disable_caches = True
        metala_core_op.CHUNK_SIZE = args.chunk_size or metala_core_op.CHUNK_SIZE
        if args.stored_rows_mib is not None:
            metala_core_triton.STORED_ROWS_BYTES = args.stored_rows_mib * 2**20
        for flag in args.flip:
            flip_switch(flag, mixer_op, metala_core_triton, metala_core_chains, metala_core_gluon)
    if args.trace:
        os.makedirs(args.trace, exist_ok=True)
    warmup.use_kernel_cache(None)
    parallel.initialize(1, 1)
    timer = Timer(args.warmup, args.runs)
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "copy_GBps": copy_bandwidth() / 1e9}
    print(f"device {results['device']}, torch {results['torch']}, copy bandwidth {results['copy_GBps']:.0f} GB/s")
    for hidden in args.hidden:
        for seq in args.seq:
            batch = args.tokens // seq
            row, modules = {}, {}
            if args.interleave:
                sets = {}
                for kind in args.kinds:  # each warmed before the next is built: build() sets its memory budget
                    modules[kind] = build(kind, hidden)
                    sets[kind] = timer.warm(modules[kind], seq, batch, hidden)
                interleaved = timer.measure_interleaved(modules, sets, seq, batch)
                del sets
            for kind in args.kinds:
                module = modules.pop(kind) if args.interleave else build(kind, hidden)
                row[kind] = interleaved[kind] if args.interleave else timer.measure(module, seq, batch, hidden)
                # each measurement as it lands: a run cut by its time limit still reports what it measured
                print(f"  measured D{hidden} T{seq} {kind}: {row[kind]['ms']:.2f} ms", flush=True)
                trace = args.trace and os.path.join(args.trace, f"{kind}-T{seq}.json")
                breakdown = kernel_breakdown(module, seq, batch, hidden, timer, trace)
                # the GPU's idle time within a step: host work the GPU waited for (launches, syncs)
                row[kind]["kernel_ms"] = breakdown["ms_per_step"]
                if kind == "metala":
                    row["breakdown"] = breakdown
                del module
                torch.cuda.empty_cache()
            row["core"] = core_floor(seq, batch, hidden, timer, results["copy_GBps"] * 1e9)
            results[f"D{hidden}-T{seq}"] = row
            report(hidden, seq, batch, row)
            if args.out:
                with open(args.out, "w") as f:
                    json.dump(results, f, indent=1)


def report(hidden, seq, batch, row) -> None:
    print(f"\n== hidden {hidden}, T {seq}, batch {batch} ({seq * batch} tokens), forward+backward")
    for kind, r in row.items():
        if "ms" in r:
            print(
                f"  {kind:<16} {r['ms']:8.2f} ms (spread {r['spread_ms']:.2f})  "
                f"{r['tokens_per_s'] / 1e6:6.2f} M tok/s  peak +{r['peak_gb']:.2f} GB (saved {r['saved_gb']:.2f})  "
                f"kernels {r['kernel_ms']:.2f} ms"
            )
    for mixer, base in (("metala", "attention"), ("metala_fused", "attention"), ("metala_layer", "attention_layer")):
        if mixer in row and base in row:
            print(
                f"  ratio {mixer}/{base}: time {row[mixer]['ms'] / row[base]['ms']:.3f}, "
                f"memory {row[mixer]['peak_gb'] / row[base]['peak_gb']:.3f}"
            )
    if "breakdown" in row:
        share = row["breakdown"]["share"]
        print(
            f"  metala block kernel time: gemm {share['gemm']:.1%}, core {share['core']:.1%}, "
            f"short conv {share['conv']:.1%}, elementwise {share['elementwise']:.1%}"
        )
    labels = {"op": "as the core op (no self-augmentation)", "block": "as the block calls it (self-augmentation)"}
    for name, core in row["core"].items():
        print(
            f"  MetaLA core f+b alone {core['ms']:.2f} ms, byte floor {core['floor_ms']:.2f} ms "
            f"({core['over_floor']:.1f}x), {labels[name]}"
        )


if __name__ == "__main__":
    main()
