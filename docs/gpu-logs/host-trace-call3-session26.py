"""Session 26: where the GPU waits for the host in bench/layer.py's timed f+b (sync, L2 flush, events, one step),
MetaLA's block against attention's, T=2048: a CPU+CUDA trace of 3 timed-pattern steps per kind, and per step the idle
time between the flush kernel's end and the step's last kernel."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
import layer  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

out = sys.argv[1]
layer.warmup.use_kernel_cache(None)
layer.parallel.initialize(1, 1)
timer = layer.Timer(5, 3)
seq, batch, hidden = 2048, 32, 2048
for kind in ("metala", "attention"):
    module = layer.build(kind, hidden)
    sets = timer.inputs(seq, batch, hidden)
    for i in range(6):
        layer.Timer.step(module, *sets[i % 3])
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(3):
            x, grad = sets[i % 3]
            module.zero_grad(set_to_none=True)
            timer.flush.random_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            with torch.profiler.record_function(f"STEP{i}"):
                layer.Timer.step(module, x, grad)
            end.record()
            end.synchronize()
            print(f"HOST {kind} step {i}: {start.elapsed_time(end):.3f} ms (events)", flush=True)
    path = os.path.join(out, f"host-{kind}.json")
    prof.export_chrome_trace(path)
    events = json.load(open(path))["traceEvents"]
    kernels = sorted(
        (e["ts"], e["ts"] + e.get("dur", 0), e["name"])
        for e in events
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
    )
    flushes = [k for k in kernels if "random" in k[2].lower() or "distribution" in k[2].lower()]
    steps = [e for e in events if e.get("ph") == "X" and str(e.get("name", "")).startswith("STEP")]
    for i, fl in enumerate(flushes[:3]):
        stop = flushes[i + 1][0] if i + 1 < len(flushes) else float("inf")
        inside = [k for k in kernels if fl[1] <= k[0] < stop]
        busy, until, gaps, prev = 0.0, fl[1], [], fl[2]
        for s, e, n in inside:
            if s > until:
                gaps.append((s - until, prev[:50], n[:50]))
            busy += max(0.0, e - max(s, until))
            if e > until:
                until, prev = e, n
        span = until - fl[1]
        step_cpu = [e for e in steps if e["name"] == f"STEP{i}"]
        cpu = step_cpu[0]["dur"] if step_cpu else float("nan")
        print(
            f"HOST {kind} step {i}: GPU span {span / 1e3:.3f} ms, busy {busy / 1e3:.3f}, "
            f"idle {(span - busy) / 1e3:.3f}, host's step {cpu / 1e3:.3f} ms; "
            f"first kernel {((inside[0][0] - fl[1]) if inside else 0):.1f} us after the flush",
            flush=True,
        )
        for g in sorted(gaps, reverse=True)[:6]:
            print(f"HOST   {g[0]:8.1f} us after {g[1]} before {g[2]}", flush=True)
    del module
    torch.cuda.empty_cache()
