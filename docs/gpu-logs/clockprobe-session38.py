"""Session 38: does bench/layer.py's block time follow the GPU's SM clock? The metala and attention blocks (hidden
2048, T 2048, batch 32) built and warmed as bench/layer.py does, then timed in turns, each turn STEPS f+b in one
window (CUDA events), while `nvidia-smi -lms 20` samples SM clock, power and the active clock-event reasons. Prints
per window: kind, ms per step, the mean SM clock and power of the samples within it, the reasons seen."""

import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, "bench")
import layer  # noqa: E402

STEPS, TURNS = 4, 24
seq, batch, hidden = 2048, 32, 2048
smi = subprocess.Popen(
    ["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw,clocks_event_reasons.active", "--format=csv,noheader",
     "-lms", "20"], stdout=subprocess.PIPE, text=True)  # fmt: skip
layer.warmup.use_kernel_cache(None)
layer.parallel.initialize(1, 1)
timer = layer.Timer(warmup=4, runs=0)
modules, sets = {}, {}
for kind in ("metala", "attention"):  # each warmed before the next is built: build() sets its memory budget
    modules[kind] = layer.build(kind, hidden)
    sets[kind] = timer.warm(modules[kind], seq, batch, hidden)
windows = []
for _turn in range(TURNS):
    for kind, module in modules.items():
        torch.cuda.synchronize()
        module.zero_grad(set_to_none=True)
        timer.flush.random_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.time()
        start.record()
        for i in range(STEPS):
            timer.step(module, *sets[kind][i % layer.INPUT_SETS])
        end.record()
        end.synchronize()
        windows.append((kind, t0, time.time(), start.elapsed_time(end) / STEPS))
time.sleep(0.1)
smi.terminate()
samples = []
for line in smi.stdout.read().splitlines():
    try:
        stamp, clock, power, reasons = [x.strip() for x in line.split(",")]
        t = time.mktime(time.strptime(stamp.split(".")[0], "%Y/%m/%d %H:%M:%S")) + float("0." + stamp.split(".")[1])
        samples.append((t, float(clock.split()[0]), float(power.split()[0]), reasons))
    except (ValueError, IndexError):
        continue
print(f"{len(samples)} samples")
by_kind = {}
for kind, t0, t1, ms in windows:
    inside = [s for s in samples if t0 <= s[0] <= t1]
    clock = statistics.mean(s[1] for s in inside) if inside else float("nan")
    power = statistics.mean(s[2] for s in inside) if inside else float("nan")
    reasons = sorted({s[3] for s in inside})
    by_kind.setdefault(kind, []).append((ms, clock))
    print(f"{kind:10s} {ms:7.3f} ms/step  SM {clock:6.0f} MHz  {power:5.0f} W  n={len(inside)}  {reasons}")
for kind, rows in by_kind.items():
    ms = [r[0] for r in rows]
    print(f"{kind}: median {statistics.median(ms):.3f}, min {min(ms):.3f}, max {max(ms):.3f}")
ratio = [m[0] / a[0] for m, a in zip(by_kind["metala"], by_kind["attention"])]
print(f"turn ratios: median {statistics.median(ratio):.3f}, min {min(ratio):.3f}, max {max(ratio):.3f}")
