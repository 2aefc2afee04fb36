"""How much of the MetaLA block's backward a GEMM on a second stream can hide, measured against the same kernels run
one after another in the same process.

    python bench/overlap.py [--batch 32] [--seq 2048] [--hidden 2048] [--runs 20]

The block's backward runs the token mix's kernels (epilogue, the core's chained and qk/dv kernels: latency-bound, at
two or three programs per SM) between GEMMs that do not need them: the output projection's weight gradient
(d out^T · mixed) and, once the epilogue has written d gate, the gate's share of the input projection's gradients.
For each pairing this prints the serial time (the mix's backward, then the GEMMs), the overlapped time (the GEMMs
on a second stream, of lower priority, started with the mix's backward) and their ratio, also with cuBLAS told to
leave SMs free (torch._C._set_sm_carveout_experimental) where this torch has it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala import warmup  # noqa: E402
from neox_metala.ops import epilogue_op, metala_core_op, metala_core_triton, mixer_op  # noqa: E402
from neox_metala.ops.options import MetaLAOptions  # noqa: E402
from neox_metala.ops.reference import HEAD_NORM_EPS  # noqa: E402

HEAD_V_DIM = 128
DEVICE = "cuda"  # (the CPU runs the same shapes through the ops' CPU kernels, to check this script)


def tensors(batch, seq, hidden):
    dev, bf16 = DEVICE, torch.bfloat16
    heads, options = hidden // HEAD_V_DIM, MetaLAOptions()
    projected = torch.randn(batch, seq, 3 * hidden, device=dev, dtype=bf16)
    gate_bias = torch.zeros(hidden, device=dev, dtype=bf16)
    aug = 0.1 * torch.randn(hidden // 2, device=dev, dtype=bf16)
    saved = mixer_op.mixer_forward(
        projected, gate_bias, aug, heads, options.decay_normalizer, HEAD_NORM_EPS, True, options.keep_core_states
    )
    y = saved[0]  # (B, T, H, V), laid out (T, B, H, V)
    mixed = y.flatten(-2).transpose(0, 1).reshape(seq * batch, hidden)
    dout = torch.randn(seq * batch, hidden, device=dev, dtype=bf16)
    w_out = 0.02 * torch.randn(hidden, hidden, device=dev, dtype=bf16)
    dy = (dout @ w_out).view(seq, batch, heads, HEAD_V_DIM).transpose(0, 1)
    x = torch.randn(batch * seq, hidden, device=dev, dtype=bf16)  # the input projection's input
    w_gate = 0.02 * torch.randn(hidden, hidden, device=dev, dtype=bf16)
    return dict(
        projected=projected, saved=saved, gate_bias=gate_bias, aug=aug, heads=heads, options=options, mixed=mixed,
        dout=dout, dy=dy, x=x, w_gate=w_gate,
    )  # fmt: skip


def mix_backward(t):
    _, o, stats, states = t["saved"]
    return mixer_op.mixer_backward(
        t["dy"], t["projected"], o, stats, states, t["gate_bias"], t["aug"], t["heads"], t["options"].decay_normalizer
    )


def out_wgrad(t):
    return t["dout"].t() @ t["mixed"]


def gate_grads(t, d_projected):
    """The gate's share of the input projection's gradients: d gate lies in the last third of d projected."""
    hidden = t["x"].shape[1]
    dg = d_projected.view(-1, 3 * hidden)[:, 2 * hidden :]
    return dg.t() @ t["x"], dg @ t["w_gate"]


def gate_grads_of_fresh(t):
    return gate_grads(t, t["projected"])  # same shapes and strides as the backward's d projected


def halves(t):
    """The token mix in two batch halves, its core's and its epilogue's kernels as separate steps: for each half
    (forward core, forward epilogue, backward epilogue, backward core), each a function of the half's saved
    tensors, run once here so that the backward's have their inputs."""
    batch, heads, options = t["projected"].shape[0], t["heads"], t["options"]
    norm, keep, aug = options.decay_normalizer, options.keep_core_states, t["aug"]
    steps = []
    for part in (slice(0, batch // 2), slice(batch // 2, batch)):
        projected, dy = t["projected"][part], t["dy"][part]
        q, x, v, g = mixer_op._parts(projected, heads)
        scale, box = mixer_op._scale(q), {}

        def core_fwd(q=q, x=x, v=v, scale=scale, box=box):
            box["stats"] = epilogue_op.stats_for(v)
            box["o"], box["states"] = metala_core_triton.metala_core_fwd(
                q, x, v, scale, norm, metala_core_op.CHUNK_SIZE, keep, (box["stats"][2], aug)
            )

        def epi_fwd(q=q, x=x, v=v, g=g, box=box):
            epilogue_op.epilogue_forward_triton(
                box["o"], q, x, v, g, t["gate_bias"], aug, norm, HEAD_NORM_EPS, True, stats=box["stats"]
            )

        d_projected = torch.empty_like(projected)
        grads = mixer_op._parts(d_projected, heads)
        da = torch.empty(q.shape[:3], dtype=torch.float32, device=q.device)

        def epi_bwd(dy=dy, q=q, x=x, v=v, g=g, grads=grads, da=da, box=box):
            box["d_o"] = epilogue_op.epilogue_backward_triton(
                dy, box["o"], q, x, v, g, t["gate_bias"], aug, box["stats"], norm, grads=grads, da=da
            )[0]

        def core_bwd(q=q, x=x, v=v, scale=scale, grads=grads, da=da, box=box):
            metala_core_triton.metala_core_bwd(
                q, x, v, scale, norm, box["d_o"], box["states"], metala_core_op.CHUNK_SIZE, grads=grads[:3],
                accumulate=True, augmentation=(da, aug),
            )  # fmt: skip

        core_fwd(), epi_fwd(), epi_bwd()
        steps.append((core_fwd, epi_fwd, epi_bwd, core_bwd))
    return steps


class Clock:
    def __init__(self, runs):
        self.runs = runs
        self.flush = torch.empty(512 * 2**20, dtype=torch.uint8, device="cuda")
        self.side = torch.cuda.Stream(priority=0)  # lower priority than the main stream's kernels below

    def time(self, fn) -> float:
        times = []
        for i in range(self.runs + 3):
            self.flush.random_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            if i >= 3:
                times.append(start.elapsed_time(end))
        return statistics.median(times)

    def beside(self, main, *others):
        """main() on the current stream, others() on the side stream from the same moment; joined at the end."""
        ready = torch.cuda.Event()
        ready.record()
        with torch.cuda.stream(self.side):
            self.side.wait_event(ready)
            for other in others:
                other()
        main()
        torch.cuda.current_stream().wait_stream(self.side)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    warmup.use_kernel_cache(None)  # the trainer's kernel cache: no compiling where it holds these builds
    t = tensors(args.batch, args.seq, args.hidden)
    clock = Clock(args.runs)
    high = torch.cuda.Stream(priority=-1)
    device = torch.cuda.get_device_name()
    print(f"B {args.batch} T {args.seq} hidden {args.hidden}, {device}, torch {torch.__version__}")
    alone = {
        "mix backward": clock.time(lambda: mix_backward(t)),
        "out wgrad": clock.time(lambda: out_wgrad(t)),
        "gate wgrad + dgrad": clock.time(lambda: gate_grads_of_fresh(t)),
    }
    for name, ms in alone.items():
        print(f"  {name:24s} {ms:7.3f} ms")
    carveouts = [0, 16, 32, 66] if hasattr(torch._C, "_set_sm_carveout_experimental") else [0]
    pairs = {
        "mix bwd | out wgrad": ((lambda: mix_backward(t)), [lambda: out_wgrad(t)], ["mix backward", "out wgrad"]),
        "mix bwd | out wgrad + gate": (
            (lambda: mix_backward(t)),
            [lambda: out_wgrad(t), lambda: gate_grads_of_fresh(t)],
            ["mix backward", "out wgrad", "gate wgrad + dgrad"],
        ),
    }
    for carveout in carveouts:
        if carveout:
            torch._C._set_sm_carveout_experimental(carveout)
        for name, (main_fn, others, parts) in pairs.items():
            serial = sum(alone[p] for p in parts)
            with torch.cuda.stream(high):  # the mix's kernels on a high-priority stream, the GEMMs on a low one
                both = clock.time(lambda main_fn=main_fn, others=others: clock.beside(main_fn, *others))
            print(
                f"  carveout {carveout:3d}  {name:28s} serial {serial:7.3f}  overlapped {both:7.3f} ms  "
                f"ratio {both / serial:.3f}  saved {serial - both:6.3f} ms"
            )
    if len(carveouts) > 1:
        torch._C._set_sm_carveout_experimental(None)  # back to cuBLAS's own choice
    pipelined_halves(t, clock, high)


def pipelined_halves(t, clock, high):
    """Half B's core beside half A's epilogue (the forward), half B's epilogue beside half A's core (the
    backward): the core's latency-bound kernels next to the epilogue's bandwidth-bound ones."""
    (cf_a, ef_a, eb_a, cb_a), (cf_b, ef_b, eb_b, cb_b) = halves(t)
    norm = t["options"].decay_normalizer
    full_fwd = lambda: mixer_op.mixer_forward_triton(  # noqa: E731
        t["projected"], t["gate_bias"], t["aug"], t["heads"], norm, HEAD_NORM_EPS, True, True
    )

    def forward_pipelined():
        cf_a()
        done_a = torch.cuda.Event()
        done_a.record()
        cf_b()
        done_b = torch.cuda.Event()
        done_b.record()
        with torch.cuda.stream(clock.side):
            clock.side.wait_event(done_a)
            ef_a()
            clock.side.wait_event(done_b)
            ef_b()
        torch.cuda.current_stream().wait_stream(clock.side)

    def backward_pipelined():
        ready = torch.cuda.Event()
        ready.record()
        events = [torch.cuda.Event(), torch.cuda.Event()]
        with torch.cuda.stream(clock.side):
            clock.side.wait_event(ready)
            eb_a()
            events[0].record()
            eb_b()
            events[1].record()
        torch.cuda.current_stream().wait_event(events[0])
        cb_a()
        torch.cuda.current_stream().wait_event(events[1])
        cb_b()

    with torch.cuda.stream(high):
        times = {
            "forward, whole batch": clock.time(full_fwd),
            "forward, halves one after another": clock.time(lambda: (cf_a(), ef_a(), cf_b(), ef_b())),
            "forward, halves pipelined": clock.time(forward_pipelined),
            "backward, whole batch": clock.time(lambda: mix_backward(t)),
            "backward, halves one after another": clock.time(lambda: (eb_a(), cb_a(), eb_b(), cb_b())),
            "backward, halves pipelined": clock.time(backward_pipelined),
        }
    for name, ms in times.items():
        print(f"  {name:36s} {ms:7.3f} ms")
    for way in ("forward", "backward"):
        whole, pipelined = times[f"{way}, whole batch"], times[f"{way}, halves pipelined"]
        print(f"  {way}: pipelined halves / whole batch {pipelined / whole:.3f} (saved {whole - pipelined:.3f} ms)")


if __name__ == "__main__":
    main()
