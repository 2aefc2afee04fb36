"""The user's command on GPUs, layout by layout: `python deepy.py train.py -d DIR model.yml data.yml run.yml` for the
380M config (configs/metala-380M.yml: its model, precision and engine; short runs on the bundled sample corpus),
and for each run: exit status, launch -> first logged iteration, last iteration -> exit, per-step loss and grad
norm, tokens/s per GPU. Compared with the 1-GPU run of the same global batch:

    python bench/layouts.py --layouts 1gpu tp2 pp2 dp2 --steps 20 --out $OUT/layouts.json
    python bench/layouts.py --layouts tp2pp2 --resume-at 10 ...          # stop at 10, resume, compare 11..20
    python bench/layouts.py --layouts tp2 --resume-at 10 --resume-as 1gpu  # resume a TP=2 checkpoint on 1 GPU

Runs whose GPUs do not overlap start together (--gpus 4 -> e.g. 1gpu beside tp2); each has its own port, run
folder and log. tests/training/test_gpu_runs.py asserts on the same runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from set_argument import add_set_argument

from neox_metala.launch.local import die_with_parent
from neox_metala.parallel import free_port

REPO = Path(__file__).resolve().parents[1]
# name -> (model_parallel_size, pipe_parallel_size, GPUs); pipe_parallel_size 1 is the config's own engine
LAYOUTS = {
    "1gpu": (1, 1, 1),
    "tp2": (2, 1, 2),
    "pp2": (1, 2, 2),
    "dp2": (1, 1, 2),
    "tp2pp2": (2, 2, 4),
    "tp2dp2": (2, 1, 4),
    "pp2dp2": (1, 2, 4),
}
GLOBAL_BATCH, MICRO_BATCH = 16, 8  # sequences of 2048 tokens: 32,768 tokens per step on every layout


@dataclass
class RunResult:
    name: str
    gpus: int
    exit_code: int | None = None
    launch_to_first_iteration_s: float | None = None
    last_iteration_to_exit_s: float | None = None
    losses: dict = field(default_factory=dict)
    grad_norms: dict = field(default_factory=dict)
    tokens_per_second_per_gpu: float | None = None
    memory_gib: float | None = None
    log: str = ""


BASE_CONFIG = "metala-380M.yml"
EXTRA_MODEL_KEYS: dict = {}  # --warmup sets one here


def write_configs(
    run_dir: Path, layout: str, steps: int, data: dict, kernel_cache: str, port: int, extra: dict | None = None
) -> list[str]:
    """model.yml (the base config with this layout and a short run), data.yml, run.yml (paths, GPUs, port)."""
    tp, pp, gpus = LAYOUTS[layout]
    model = yaml.safe_load((REPO / "configs" / BASE_CONFIG).read_text())
    # The first `steps` steps of the config's own run: its LR schedule (warmup over 1% of its train_iters), not
    # one squeezed into `steps` (which would reach the peak LR at once and amplify bf16 rounding step by step).
    model.update(
        lr_decay_iters=model.get("lr_decay_iters") or model["train_iters"],
        train_iters=steps,
        train_batch_size=GLOBAL_BATCH,
        train_micro_batch_size_per_gpu=MICRO_BATCH,
        model_parallel_size=tp,
        pipe_parallel_size=pp,
        log_interval=1,
        eval_interval=10**6,
        eval_iters=0,
        checkpoint_factor=10**6,
    )
    model.pop("gradient_accumulation_steps", None)
    model.update(EXTRA_MODEL_KEYS, **(extra or {}))
    run = {
        "num_gpus": gpus,
        "master_port": port,
        "save": str(run_dir / "ckpt"),
        "load": str(run_dir / "ckpt"),
        "log_dir": str(run_dir / "log"),
        "kernel_cache_dir": kernel_cache,
        "num_workers": 2,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, values in (("model", model), ("data", data), ("run", run)):
        (run_dir / f"{name}.yml").write_text(yaml.safe_dump(values))
    return ["model.yml", "data.yml", "run.yml"]


class Launch:
    """One deepy.py command, its output time-stamped line by line (for launch -> first iteration)."""

    def __init__(self, run_dir: Path, files: list[str], visible_gpus: list[int], limit_s: float):
        env = {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": ",".join(map(str, visible_gpus)),
            "PYTHONUNBUFFERED": "1",
            "WANDB_MODE": "offline",
            "NCCL_NVLS_ENABLE": "0",
            "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
            "NVSHMEM_DISABLE_NVLS": "1",
        }
        self.started = time.monotonic()
        self.limit_s = limit_s
        self.lines: list[tuple[float, str]] = []
        self.log_path = run_dir / "deepy.log"
        self.process = subprocess.Popen(
            [sys.executable, "deepy.py", "train.py", "-d", str(run_dir), *files],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,  # a run outlived a pytest cut by a call's time limit and held its port
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with open(self.log_path, "w") as log:
            for line in self.process.stdout:
                self.lines.append((time.monotonic(), line))
                log.write(line)
                log.flush()

    def signal_after(self, pattern: str, sig: int) -> None:
        while self.process.poll() is None and not any(pattern in line for _, line in self.lines):
            time.sleep(0.05)
        self.process.send_signal(sig)

    def wait(self) -> tuple[int | None, float]:
        """(exit code or None when it outlived its limit and was killed, the time it ended)."""
        try:
            code = self.process.wait(timeout=max(1.0, self.started + self.limit_s - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            code = None
        ended = time.monotonic()
        self.reader.join(timeout=10)
        return code, ended


def finish(name: str, launch: Launch, run_dir: Path, gpus: int) -> RunResult:
    code, ended = launch.wait()
    result = RunResult(name, gpus, exit_code=code)
    iterations = [(t, line) for t, line in launch.lines if line.startswith("iteration ")]
    if iterations:
        result.launch_to_first_iteration_s = iterations[0][0] - launch.started
        result.last_iteration_to_exit_s = ended - iterations[-1][0]
    records = (
        [json.loads(line) for line in (run_dir / "log" / "metrics.jsonl").read_text().splitlines() if line.strip()]
        if (run_dir / "log" / "metrics.jsonl").exists()
        else []
    )
    train = [r for r in records if "loss" in r]
    result.losses = {r["iteration"]: r["loss"] for r in train}
    result.grad_norms = {r["iteration"]: r.get("grad_norm") for r in train}
    steady = [r["tokens_per_second"] for r in train[4:] if r.get("tokens_per_second")]  # after warm-up steps
    if steady:
        result.tokens_per_second_per_gpu = statistics.median(steady) / gpus
    memories = [r["memory_max_allocated_gib"] for r in train if "memory_max_allocated_gib" in r]
    result.memory_gib = max(memories) if memories else None
    result.log = "".join(line for _, line in launch.lines[-40:])
    return result


def run_waves(
    names: list[str],
    total_gpus: int,
    steps: int,
    data: dict,
    kernel_cache: str,
    work: Path,
    limit_s: float,
) -> dict[str, RunResult]:
    """Start as many runs at once as fit on the GPUs (in the order given), each on its own GPUs and a free port (a
    fixed one can still be held by a run an earlier call left behind)."""
    results, pending = {}, list(names)
    while pending:
        free, wave = list(range(total_gpus)), []
        for name in list(pending):
            gpus = LAYOUTS[name][2]
            if gpus <= len(free):
                mine, free = free[:gpus], free[gpus:]
                run_dir = work / name
                files = write_configs(run_dir, name, steps, data, kernel_cache, free_port())
                wave.append((name, Launch(run_dir, files, mine, limit_s), run_dir, gpus))
                pending.remove(name)
        for name, launch, run_dir, gpus in wave:
            results[name] = finish(name, launch, run_dir, gpus)
            print(summary_line(results[name]), flush=True)
    return results


def resume_check(
    layout: str,
    steps: int,
    stop_at: int,
    data: dict,
    kernel_cache: str,
    work: Path,
    limit_s: float,
    resume_as: str | None = None,
) -> tuple[RunResult, RunResult]:
    """`layout` trained to `stop_at` (exit_interval: it saves and exits), then resumed to `steps` in `resume_as`
    (default: the same layout; another one loads the checkpoint through the automatic layout change)."""
    resume_as = resume_as or layout
    run_dir = work / (f"{layout}-resume" if resume_as == layout else f"{layout}-resume-as-{resume_as}")
    gpus = LAYOUTS[layout][2]
    files = write_configs(run_dir, layout, steps, data, kernel_cache, free_port(), {"exit_interval": stop_at})
    first = finish(f"{layout}-to-{stop_at}", Launch(run_dir, files, list(range(gpus)), limit_s), run_dir, gpus)
    print(summary_line(first), flush=True)
    gpus = LAYOUTS[resume_as][2]
    files = write_configs(run_dir, resume_as, steps, data, kernel_cache, free_port())
    second = finish(f"{resume_as}-resumed", Launch(run_dir, files, list(range(gpus)), limit_s), run_dir, gpus)
    print(summary_line(second), flush=True)
    return first, second


def relative_differences(result: RunResult, reference: RunResult, steps) -> tuple[float, float]:
    """Largest relative difference of the loss and of the grad norm over `steps` (inf where a step is missing)."""

    def worst(ours: dict, theirs: dict) -> float:
        diffs = [
            abs(ours[s] - theirs[s]) / abs(theirs[s])
            if s in ours and s in theirs and ours[s] is not None
            else float("inf")
            for s in steps
        ]
        return max(diffs) if diffs else float("inf")

    return worst(result.losses, reference.losses), worst(result.grad_norms, reference.grad_norms)


def summary_line(r: RunResult) -> str:
    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    return (
        f"{r.name:>14} | exit {r.exit_code} | launch->first iteration {fmt(r.launch_to_first_iteration_s, '.1f')} s"
        f" | last iteration->exit {fmt(r.last_iteration_to_exit_s, '.1f')} s | "
        f"{fmt(r.tokens_per_second_per_gpu, ',.0f')} tok/s/GPU | {fmt(r.memory_gib, '.1f')} GiB | "
        f"steps {len(r.losses)}"
    )


def sample_data(work: Path) -> dict:
    from neox_metala.data_prep.sample import prepare_sample

    prepared = prepare_sample(work / "sample")
    return {
        key: prepared[key]
        for key in ("train_data_paths", "valid_data_paths", "test_data_paths", "tokenizer_type", "vocab_file")
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", nargs="+", default=["1gpu", "tp2", "pp2", "dp2"], choices=list(LAYOUTS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--gpus", type=int, default=None, help="GPUs to spread the runs over (default: all)")
    parser.add_argument("--resume-at", type=int, default=None, help="also stop the last layout here and resume")
    parser.add_argument(
        "--resume-as", default=None, choices=list(LAYOUTS), help="resume in this layout (default: the same)"
    )
    parser.add_argument("--work", default="/tmp/neox-metala-layouts")
    parser.add_argument("--kernel-cache", default=None)
    parser.add_argument("--limit", type=float, default=300, help="seconds before a run is killed (a defect)")
    parser.add_argument("--config", default=BASE_CONFIG, help="model config in configs/ (tiny.yml: a CPU smoke run)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="warmup fraction of a schedule squeezed into --steps (lr_decay_iters = steps) instead "
        "of the config's own schedule; 0.1 reaches the peak LR after 2 of 20 steps",
    )
    add_set_argument(parser)
    parser.add_argument("--out", default=None)
    options = parser.parse_args(argv)
    import torch

    globals()["BASE_CONFIG"] = options.config
    if options.warmup is not None:
        EXTRA_MODEL_KEYS.update(warmup=options.warmup, lr_decay_iters=options.steps)
    EXTRA_MODEL_KEYS.update(options.set)
    work = Path(options.work)
    data = sample_data(work)
    total = options.gpus or torch.cuda.device_count()
    cache = options.kernel_cache or os.environ.get("NEOX_METALA_KERNEL_CACHE")
    results = run_waves(options.layouts, total, options.steps, data, cache, work, options.limit)
    report = {"runs": {name: r.__dict__ for name, r in results.items()}, "comparisons": {}}
    steps = range(1, options.steps + 1)
    reference = results.get("1gpu")
    for name, result in results.items():
        if reference is not None and name != "1gpu":
            loss_diff, norm_diff = relative_differences(result, reference, steps)
            report["comparisons"][name] = {
                "loss_rel_max": loss_diff,
                "grad_norm_rel_max": norm_diff,
                "scaling_efficiency": (result.tokens_per_second_per_gpu or 0)
                / (reference.tokens_per_second_per_gpu or float("nan")),
            }
            print(f"{name:>14} vs 1gpu: loss rel max {loss_diff:.2e} | grad norm rel max {norm_diff:.2e}")
    if options.resume_at:
        layout = options.layouts[-1]
        first, second = resume_check(
            layout, options.steps, options.resume_at, data, cache, work, options.limit, resume_as=options.resume_as
        )
        resumed_steps = range(options.resume_at + 1, options.steps + 1)
        loss_diff, norm_diff = relative_differences(second, results[layout], resumed_steps)
        report["resume"] = {
            "layout": layout,
            "resumed_as": options.resume_as or layout,
            "first": first.__dict__,
            "second": second.__dict__,
            "loss_rel_max": loss_diff,
            "grad_norm_rel_max": norm_diff,
        }
        print(
            f"{layout} resumed at {options.resume_at} as {options.resume_as or layout} vs uninterrupted {layout}: "
            f"loss rel max {loss_diff:.2e} | "
            f"grad norm rel max {norm_diff:.2e}"
        )
    if options.out:
        Path(options.out).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
