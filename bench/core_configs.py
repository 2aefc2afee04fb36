"""Candidate autotune configurations of MetaLA's core kernels (ops/metala_core_triton.py), one kernel at a time (the
others as the shipped lists' autotuner picks them for the shape; states kept from the forward, as the model keeps
them): each candidate's correctness first, in a process of its own with CUDA_LAUNCH_BLOCKING=1 (a configuration
that faults ends only its own process: Triton 3.6 built one that read out of bounds in bf16), against the fp64
chunk form in bf16 and fp16 at awkward lengths; then the core's forward+backward time with each correct candidate
at the model's shapes. Prints the fastest correct candidate of each kernel per
shape, then the core with all of them, with the shipped lists as the autotuner picks from them, and with the states
kept from the forward instead of recomputed (the option `keep_states`).

    python bench/core_configs.py [--cases 8x2048 2x8192] [--runs 30] [--out r.json] [--kernels chunk_dv ...]
                                 [--accumulate]    # the backward adding into given gradients, as the model's does
    TRITON_INTERPRET=1 python bench/core_configs.py --smoke     # the logic on the CPU: tiny shape, 2 candidates

The candidates are wider than the shipped lists on purpose: the shipped lists are what this script showed to win.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala import warmup  # noqa: E402
from neox_metala.ops import metala_core, metala_core_triton, triton_launch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import core as core_bench  # noqa: E402
from kernel_timing import median_ms  # noqa: E402

HEADS, HEAD_K_DIM, HEAD_V_DIM = 8, 64, 128
SCALE = HEAD_K_DIM**-0.5


def _bv(rows):
    """(BV, warps, stages[, register cap]) rows -> candidates."""
    return [({"BV": bv}, warps, stages, *cap) for bv, warps, stages, *cap in rows]


def _k_split(rows):
    """(BV, K_SPLIT, warps, stages[, register cap]) rows -> candidates of the qk gradients' channel split."""
    return [({"BV": bv, "K_SPLIT": split}, warps, stages, *cap) for bv, split, warps, stages, *cap in rows]


_UPDATES = _bv(
    [(32, 4, 1), (16, 4, 1), (32, 8, 1), (64, 4, 1), (64, 8, 1), (128, 4, 1), (128, 8, 1), (64, 8, 2)]
    + [(128, 4, 1, 168), (128, 4, 1, 128), (128, 8, 1, 128)]
)
# dv stepping through V = 128 in blocks within each program (V_STEPS), the loads pipelined
_V_STEPS = [
    ({"BV": bv, "V_STEPS": 128 // bv}, *c)
    for bv, *c in [(64, 4, 3, 168), (64, 4, 2, 168), (32, 4, 3, 168), (64, 4, 3), (64, 8, 3), (64, 4, 2), (32, 4, 3)]
    + [(64, 4, 3, 128)]
]
CANDIDATES = {  # kernel name in metala_core_triton._kernels() -> [(constexprs, warps, stages[, register cap])]
    "state_updates": _UPDATES,
    "state_grad_updates": _UPDATES,
    "scan": [
        ({"BK": bk, "BV": bv, "STAGES": st}, w, 1)
        for bk, bv, st, w in [
            (16, 64, 8, 4),
            (32, 32, 8, 4),
            (16, 32, 8, 2),
            (32, 32, 4, 4),
            (32, 64, 8, 4),
            (64, 32, 8, 4),
            (16, 64, 4, 4),
            (32, 32, 2, 4),
        ]
    ],  # fmt: skip
    "output": [
        ({}, *c)
        for c in [(4, 2), (8, 2), (8, 3), (4, 1), (8, 1), (4, 3), (16, 2), (4, 2, 168), (4, 1, 168), (8, 2, 128)]
        + [(16, 3), (16, 1), (4, 2, 128)]
    ],
    "chunk_qk_grads": _bv(
        [(16, 8, 2), (32, 8, 1), (32, 8, 2), (16, 8, 3), (16, 8, 1), (64, 8, 1), (32, 16, 1), (64, 16, 1), (128, 16, 1)]
        + [(64, 8, 1, 128), (64, 8, 1, 168), (32, 8, 1, 168), (64, 8, 2), (64, 8, 3), (64, 8, 4)]
        + [(64, 16, 3), (64, 16, 2), (32, 16, 3), (32, 16, 2)]  # 16 warps: 128 registers, one program per SM
    )
    # each chunk's channels over K_SPLIT programs (#19-27; sm90 bf16 builds with self-augmentation: K_SPLIT 2 at 8
    # warps 190 registers, K_SPLIT 4 at 8 warps 124, at 4 warps 168-202: two or three programs per SM)
    + _k_split([(64, 2, 8, 3), (64, 2, 8, 3, 128), (64, 2, 4, 3), (64, 4, 8, 3), (64, 4, 4, 3)])
    + _k_split([(128, 4, 4, 1), (32, 4, 4, 3), (128, 4, 8, 1), (32, 4, 8, 3)])
    + _k_split([(64, 2, 4, 2), (32, 2, 4, 3), (128, 2, 4, 1), (64, 2, 4, 4)])  # #28-31: around #21
    + _k_split([(64, 2, 4, 3, 168), (32, 2, 4, 3, 168)]),  # #32-33: #21 capped for three programs per SM
    "chunk_dv": _bv(
        [
            (16, 4, 1),
            (32, 4, 1),
            (64, 4, 1),
            (32, 8, 1, 128),
            (64, 8, 1, 128),
            (32, 8, 1),
            (64, 4, 2),
            (128, 8, 1),
            (128, 8, 2),
            (128, 4, 1),
            (128, 16, 1),
            (128, 4, 1, 168),
            (64, 4, 1, 168),
            (128, 4, 1, 128),
            (128, 8, 1, 128),
        ]
    )
    + _V_STEPS,  # fmt: skip
    "decay_rows": [({}, w, 1) for w in (4, 8, 16, 2)],  # swept with STORED_DECAY_ROWS on only (`candidates`)
    # the chained forward: #0 the autotuner's pick (BV 128, 4 warps; 252 registers, two programs per SM); #1-2 two V
    # blocks of 64 per program, the key-side terms formed once (V_STEPS; sm90 bf16 builds with self-augmentation:
    # capped at 168 registers none spilled and 48 KB of shared memory, three programs per SM; uncapped 186); #3 #0
    # capped at 168 (240 B spilled; 803 against 762 µs, session 35); #4 BV 64 at 4 warps, a program per block; #5 the
    # pairs at 8 warps (128 registers, none spilled: two programs per SM). H200, B32 T2048 H16 (session 39, core_ncu
    # --candidates): #1 661 µs, #0 733, #2 789
    "chained": [
        ({"BV": 128}, 4, 1),
        ({"BV": 64, "V_STEPS": 2}, 4, 1, 168),
        ({"BV": 64, "V_STEPS": 2}, 4, 1),
        ({"BV": 128}, 4, 1, 168),
        ({"BV": 64}, 4, 1),
        ({"BV": 64, "V_STEPS": 2}, 8, 1),
    ],
    # the chained backward (metala_core_triton.CHAINED_BACKWARD): #0 BV 128 at 4 warps (255 registers, 56 B spilled;
    # sm90 bf16 builds, accumulating), #1 BV 64 at 4 warps, #2 BV 128 at 8 warps (222). H200, B32 T2048 H16 (session
    # 42): #0 770 µs per step; two V blocks of 64 per program (V_STEPS 2, as the chained forward's, removed since)
    # capped at 168 registers (160 B spilled) 797, uncapped (225 registers) 842
    "chained_grads": [
        ({"BV": 128}, 4, 1),
        ({"BV": 64}, 4, 1),
        ({"BV": 128}, 8, 1),
    ],
}
# (shape B, T, H, K, V; dtype; logit shift; outputs compared). A strong decay (shift -200) takes the exact branch;
# its d log α (so d logits) is a difference of terms ~1e5 times larger than itself (rounding noise): left out there.
CHECKS = [
    ((2, 1, 3, 16, 32), "bfloat16", 0.0, "o dq dv dlogits"),
    ((2, 40, 8, 64, 128), "bfloat16", 0.0, "o dq dv dlogits"),
    ((2, 300, 8, 64, 128), "bfloat16", 0.0, "o dq dv dlogits"),
    ((2, 300, 8, 64, 128), "float16", 0.0, "o dq dv dlogits"),
    ((1, 200, 8, 64, 128), "bfloat16", -200.0, "o dq dv"),
]
SMOKE_CHECKS = [((1, 80, 2, 16, 32), "float32", 0.0, "o dq dv dlogits")]
NORMALIZER = 16.0
BOUND = {"bfloat16": 1.5e-2, "float16": 5e-3, "float32": 1e-5}  # norm-relative, against fp64


def draw(batch, seq, heads, head_k_dim, head_v_dim, dtype, device, logit_shift=0.0):
    """bench/core.py's draw without what only fla needs: q, gate logits, v, do."""
    q, v, logits, _, _, d_out = core_bench.draw(batch, seq, heads, head_k_dim, head_v_dim, dtype, device, logit_shift)
    return q, logits, v, d_out


ACCUMULATE = False
"""--accumulate: the backward adds into given gradients, as ops/mixer_op.py's one op does with self-augmentation
(the gradient kernels' ACCUMULATE builds, which the model runs)."""


def zero_gradients(q, v):
    """(dq, d gate logits, dv) for the backward to add into with ACCUMULATE, else None."""
    return core_bench.zero_gradients(q, v) if ACCUMULATE else None


def core_call(q, logits, v, d_out, keep_states=False, grads=None):
    """The core's forward and backward; with ACCUMULATE added into `grads` (zeros unless given: a timing loop passes
    the same ones each call, so that no allocation is timed)."""
    output, states = metala_core_triton.metala_core_fwd(q, logits, v, SCALE, NORMALIZER, keep_states=keep_states)
    grads = grads if grads is not None else zero_gradients(q, v)
    dq, dlogits, dv = metala_core_triton.metala_core_bwd(
        q, logits, v, SCALE, NORMALIZER, d_out, states, grads=grads, accumulate=ACCUMULATE
    )
    return {"o": output, "dq": dq, "dv": dv, "dlogits": dlogits}


def host_ms(inputs, cuda: bool, calls: int = 50) -> dict[str, float]:
    """The host's time to launch one forward and one backward (kept states), the GPU not waited for: where it is
    longer than the kernels, the model's GPU waits for the host in between. Through Triton's normal launch path and
    through ops/triton_launch.py's direct one ("_direct")."""
    import time

    q, logits, v, d_out = inputs
    fwd = lambda: metala_core_triton.metala_core_fwd(q, logits, v, SCALE, NORMALIZER, keep_states=True)  # noqa: E731
    _, states = fwd()
    bwd = lambda: metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, d_out, states)  # noqa: E731
    result, shipped = {}, triton_launch.ENABLED
    for suffix, direct in (("", False), ("_direct", True)):
        triton_launch.ENABLED = direct
        fwd(), bwd()  # the direct path's first launches take the normal one
        for name, call in (("forward", fwd), ("backward", bwd)):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(calls):
                call()
            result[name + suffix] = (time.perf_counter() - start) / calls * 1e3
    triton_launch.ENABLED = shipped
    if cuda:
        torch.cuda.synchronize()
    return result


def reference_call(q, logits, v, d_out):
    """fp64 output and gradients by the chunk form (ops/metala_core.py), d log α chained through the decay rule."""
    q, logits, v, d_out = (t.double() for t in (q, logits, v, d_out))
    log_decay = F.logsigmoid(logits) / NORMALIZER
    output = metala_core.metala_core_forward(q, log_decay, v, SCALE)
    dq, dlog, dv = metala_core.metala_core_backward(q, log_decay, v, SCALE, d_out)
    return {"o": output, "dq": dq, "dv": dv, "dlogits": dlog * torch.sigmoid(-logits) / NORMALIZER}


def force(chosen: dict[str, tuple]) -> None:
    """Make metala_core_triton launch `chosen` {kernel: (constexprs, warps, stages)}, and for the rest the shipped
    autotuner's choice where it has made one in this process (`tune_shipped`), else its first config. One
    configuration: the autotuner then times nothing."""
    import triton

    shipped = _SHIPPED()
    kernels = {}
    for name, tuner in shipped.items():
        if name in chosen:
            constexprs, warps, stages, *cap = chosen[name]
            config = triton.Config(constexprs, num_warps=warps, num_stages=stages, maxnreg=(cap or [None])[0])
        else:
            config = getattr(tuner, "best_config", None) or tuner.configs[0]
        kernels[name] = triton.autotune([config], key=tuner.keys)(tuner.fn)
    metala_core_triton._kernels = lambda: kernels


FLAGS = ("STORED_DECAY_ROWS",)  # metala_core_triton's switches between backward forms


def time_flipped(flag: str, timed, label: str) -> float:
    """`timed()` with metala_core_triton's boolean `flag` the other way (it is read at every backward), then back."""
    setting = getattr(metala_core_triton, flag)
    setattr(metala_core_triton, flag, not setting)
    try:
        ms = timed()
    finally:
        setattr(metala_core_triton, flag, setting)
    print(f"CORE CONFIGS {label}: kept states, {flag}={not setting} (shipped lists) {ms:.3f} ms", flush=True)
    return ms


def tune_shipped(call) -> None:
    """Run `call` on the shipped autotuners, so that each picks its configuration for this shape (what `force`
    keeps for the kernels a sweep does not vary: each candidate is then timed as the model would run it)."""
    metala_core_triton._kernels = _SHIPPED
    call()


_SHIPPED = metala_core_triton._kernels
ONLY: list[str] = []  # --kernels: sweep these only (the others as `force` keeps them)


def check(name: str, index: int, smoke: bool) -> dict:
    """Errors of the core with candidate `index` of kernel `name` against fp64, at every CHECKS case."""
    device = "cpu" if smoke else "cuda"
    force({name: candidates(smoke)[name][index]})
    errors = {}
    for shape, dtype, shift, compared in SMOKE_CHECKS if smoke else CHECKS:
        inputs = draw(*shape, getattr(torch, dtype), device, shift)
        ours, reference = core_call(*inputs), reference_call(*inputs)
        for part in compared.split():
            error = (ours[part].double() - reference[part]).norm() / reference[part].norm().clamp_min(1e-30)
            errors[f"{dtype} T{shape[1]} K{shape[3]}{' strong' if shift else ''} {part}"] = error.item()
    bound_ok = all(value <= BOUND[key.split()[0]] for key, value in errors.items())
    return {"ok": bound_ok, "worst": max(errors.items(), key=lambda item: item[1] / BOUND[item[0].split()[0]])}


def candidates(smoke: bool) -> dict[str, list]:
    """Of the kernels the forward and backward run."""
    running = [name for name in _SHIPPED() if name != "decay_rows" or metala_core_triton.STORED_DECAY_ROWS]
    names = [name for name in running if not ONLY or name in ONLY]
    chosen = {name: CANDIDATES.get(name, []) for name in names}
    missing = [name for name, values in chosen.items() if not values]
    if missing:
        raise SystemExit(f"no candidates for kernels {missing}: add them to CANDIDATES")
    return {name: values[:2] for name, values in chosen.items()} if smoke else chosen


def check_all(smoke: bool) -> dict[tuple, dict]:
    jobs = [(name, index) for name, values in candidates(smoke).items() for index in range(len(values))]
    env = dict(os.environ, CUDA_LAUNCH_BLOCKING="1")

    def run(job):
        command = [sys.executable, __file__, "--check", job[0], str(job[1])] + (["--smoke"] if smoke else [])
        command += ["--accumulate"] if ACCUMULATE else []
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        except subprocess.TimeoutExpired:
            return job, {"ok": False, "worst": "timed out after 600 s"}
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            last = [line for line in (done.stdout + done.stderr).splitlines() if "rror" in line][-1:] or ["?"]
            return job, {"ok": False, "worst": f"exit {done.returncode}: {last[0][:200]}"}
        return job, json.loads(lines[-1])

    with ThreadPoolExecutor(1 if smoke else min(12, os.cpu_count() or 1)) as pool:
        return dict(pool.map(run, jobs))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["8x2048", "2x8192"], help="BATCHxSEQ")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny fp32 shape on the CPU (needs TRITON_INTERPRET=1)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--check", nargs=2, metavar=("KERNEL", "INDEX"), help=argparse.SUPPRESS)
    parser.add_argument("--kernels", nargs="+", default=[], help="sweep only these kernels (names as in CANDIDATES)")
    parser.add_argument(
        "--accumulate", action="store_true", help="time the backward adding into given gradients (the model's builds)"
    )
    args = parser.parse_args()
    ONLY[:] = args.kernels
    global ACCUMULATE
    ACCUMULATE = args.accumulate
    if args.smoke and os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("--smoke runs the kernels in Triton's interpreter: set TRITON_INTERPRET=1")
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU (or --smoke with TRITON_INTERPRET=1)")
    if args.check:
        print(json.dumps(check(args.check[0], int(args.check[1]), args.smoke)))
        return
    if not args.smoke:  # the trainer's Triton cache (the shipped lists' tuning), inherited by the check processes
        warmup.use_kernel_cache(None)
    checked = check_all(args.smoke)
    for (name, index), result in checked.items():
        status = "ok" if result["ok"] else "FAILED"
        print(f"check {name} #{index} {candidates(args.smoke)[name][index]}: {status}, worst {result['worst']}")
    if args.smoke:
        cases, dtype, device = [(1, 80, 2, 16, 32)], torch.float32, "cpu"
    else:
        cases = [(*map(int, case.split("x")), HEADS, HEAD_K_DIM, HEAD_V_DIM) for case in args.cases]
        dtype, device = torch.bfloat16, "cuda"
    results = {"checks": {f"{n} #{i}": r for (n, i), r in checked.items()}, "times": {}}
    for shape in cases:
        label = f"{shape[0]}x{shape[1]}"
        inputs = draw(*shape, dtype, device)
        grads = zero_gradients(inputs[0], inputs[2])  # allocated once per case, only with --accumulate

        def time(keep_states=False, inputs=inputs, grads=grads):
            call = lambda: core_call(*inputs, keep_states=keep_states, grads=grads)  # noqa: E731
            return median_ms(call, args.warmup, args.runs, device == "cuda")

        times, best = {}, {}
        tune_shipped(lambda: time(keep_states=True))
        for name, values in candidates(args.smoke).items():
            for index, config in enumerate(values):
                if not checked[(name, index)]["ok"]:
                    continue
                force({name: config})
                times[f"{name} #{index}"] = ms = time(keep_states=True)  # as the model runs the core
                if name not in best or ms < best[name][1]:
                    best[name] = (config, ms)
            if name not in best:  # every candidate failed its check
                print(f"T {label} {name}: no correct candidate")
                continue
            first = times.get(f"{name} #0", float("nan"))
            print(f"T {label} {name}: best {best[name][0]} {best[name][1]:.3f} ms (first candidate {first:.3f})")
        force({name: config for name, (config, _) in best.items()})
        all_best, all_best_kept = time(), time(keep_states=True)
        metala_core_triton._kernels = _SHIPPED
        shipped, shipped_kept = time(), time(keep_states=True)
        host = host_ms(inputs, device == "cuda")
        # the backward's other forms, from the shipped lists: dv in the qk-gradient kernel's V loop; the qk gradients
        # reading the decay terms that the state-gradient updates stored
        other = {flag: time_flipped(flag, lambda: time(keep_states=True), label) for flag in FLAGS}
        print(
            f"CORE CONFIGS {label}: shipped lists (autotuned) {shipped:.3f} ms, kept states {shipped_kept:.3f}; "
            f"every kernel at its best candidate {all_best:.3f} ms, kept states {all_best_kept:.3f}; host time to "
            f"launch one forward {host['forward']:.3f} ms, backward {host['backward']:.3f} (kept states); direct "
            f"launches (ops/triton_launch.py): forward {host['forward_direct']:.3f} ms, backward "
            f"{host['backward_direct']:.3f}",
            flush=True,
        )
        results["times"][label] = {
            "per_candidate": times,
            "best": {name: [config, ms] for name, (config, ms) in best.items()},
            "shipped": shipped,
            "shipped_kept_states": shipped_kept,
            "all_best": all_best,
            "all_best_kept_states": all_best_kept,
            "host_ms": host,
            "other_forms_kept_states": other,
        }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()
