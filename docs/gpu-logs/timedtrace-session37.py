"""Session 37: where bench/layer.py's timed runs of the MetaLA block wait. Each timed run (flush, events, f+b, sync) of
the block is profiled with its CPU side; prints per run the event time, the GPU's busy time between the run's first
and last kernel, the idle before the first kernel after the flush, and the largest gaps with the kernels around them.

    python timedtrace-session37.py OUTDIR [--seq 2048 8192] [--kinds metala attention]
"""

import argparse
import json
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import layer  # noqa: E402

from neox_metala import parallel, warmup  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--seq", type=int, nargs="+", default=[2048, 8192])
parser.add_argument("--kinds", nargs="+", default=["metala", "attention"])
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
warmup.use_kernel_cache(None)
parallel.initialize(1, 1)
timer = layer.Timer(5, 20)
for kind in args.kinds:
    for seq in args.seq:
        module = layer.build(kind, 2048)
        batch = 65536 // seq
        sets = timer.inputs(seq, batch, 2048)
        for i in range(6):
            timer.step(module, *sets[i % 3])
        times = []
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for i in range(6):
                x, grad = sets[i % 3]
                module.zero_grad(set_to_none=True)
                timer.flush.random_()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                timer.step(module, x, grad)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
        path = os.path.join(args.out, f"timed-{kind}-T{seq}.json")
        prof.export_chrome_trace(path)
        events = json.load(open(path))["traceEvents"]
        kernels = sorted(
            (e["ts"], e["ts"] + e.get("dur", 0), e["name"])
            for e in events
            if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
        )
        # runs: split at the flush kernels (the random fill of 512 MB)
        flushes = [i for i, k in enumerate(kernels) if "distribution" in k[2] or "random" in k[2].lower()]
        print(f"{kind} T{seq}: event ms {[round(t, 2) for t in times]}; {len(kernels)} kernels, {len(flushes)} flushes")
        for r, first in enumerate(flushes):
            last = flushes[r + 1] if r + 1 < len(flushes) else len(kernels)
            run = kernels[first + 1 : last]
            if not run:
                continue
            busy = sum(b - a for a, b, _ in run) / 1e3
            span = (run[-1][1] - run[0][0]) / 1e3
            lead = (run[0][0] - kernels[first][1]) / 1e3
            gaps = sorted(
                ((run[i + 1][0] - run[i][1], run[i][2][:40], run[i + 1][2][:40]) for i in range(len(run) - 1)),
                reverse=True,
            )[:4]
            print(
                f"  run {r}: first kernel {lead:.3f} ms after the flush ends, span {span:.3f} ms, busy {busy:.3f}, "
                f"idle {span - busy:.3f}; top gaps " + "; ".join(f"{g:.0f} us {a} -> {b}" for g, a, b in gaps)
            )
        os.system(f"gzip -f {path}")
        del module
        torch.cuda.empty_cache()
