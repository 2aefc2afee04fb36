"""The metrics processor against hand computations, and its sinks read back from the real files they write:
W&B's offline transaction log (.wandb, read by tests/wandb_offline.py), TensorBoard event files and
metrics.jsonl."""

import io
import json
import math
import time
from pathlib import Path

import pytest
import torch

from neox_metala.training import metrics as metrics_module
from neox_metala.training.metric_sinks import format_console_line
from neox_metala.training.metrics import build_metrics, peak_tflops_for_device
from neox_metala.training.wandb_sink import WandBSettings, earlier_job_files

from wandb_offline import read_wandb_history


class FakeClock:
    """Deterministic time for the rates; the sinks themselves are real."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def read_tensorboard(log_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]
    }


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------------------------
# One job, a crash after the checkpoint, and a resumed job, through every sink
# ---------------------------------------------------------------------------------------------------------------

LOG_INTERVAL, TOKENS_PER_STEP, SAMPLES_PER_STEP, WORLD_SIZE = 10, 8192, 4, 2
FLOPS_PER_TOKEN, PEAK = 2.0e9, 100.0
TRAIN_KEYS = ("loss", "lr", "grad_norm", "tokens_per_second", "tflops_per_gpu", "mfu_percent")


def run_job(run_dir, first, last, job, resume_iteration=None, wandb_run_id=None):
    """Iterations first..last, one second each; the loss encodes the job so the sinks' values can be told apart."""
    clock = FakeClock()
    metrics = build_metrics(
        run_dir,
        rank=0,
        world_size=WORLD_SIZE,
        flops_per_token=FLOPS_PER_TOKEN,
        precision="bf16",
        train_iters=100,
        resume_iteration=resume_iteration,
        wandb=WandBSettings(
            "neox-metala-test",
            group="g",
            run_name="resume-test",
            run_id=wandb_run_id,
            config={"hidden_size": 64, "lr": 3e-4},
        ),
        tensorboard_dir=run_dir / "tensorboard",
        peak_tflops_per_gpu=PEAK,
        console_stream=io.StringIO(),
        clock=clock,
    )
    for iteration in range(first, last + 1):
        clock.now += 1.0
        metrics.step_done(
            iteration,
            loss=torch.tensor(job + iteration / 1000),
            lr=1e-4 * iteration,
            grad_norm=0.5,
            tokens=TOKENS_PER_STEP,
            samples=SAMPLES_PER_STEP,
        )
        if iteration % LOG_INTERVAL == 0:
            metrics.log(iteration)
        if iteration % 50 == 0:
            metrics.log_eval(iteration, loss=job + 0.5)
    run_id = metrics.wandb_run_id
    metrics.close()
    return run_id


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("resume")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("WANDB_MODE", "offline")
        monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
        run_dir = tmp_path / "run"
        first_id = run_job(run_dir, 1, 50, job=1)  # logged up to 50, but its last checkpoint was at 30
        second_id = run_job(run_dir, 31, 100, job=2, resume_iteration=30, wandb_run_id=first_id)
    return run_dir, tmp_path / "wandb_dir", first_id, second_id


def expected_loss(job, log_iteration):
    return job + sum(range(log_iteration - 9, log_iteration + 1)) / 10 / 1000


def test_resume_continues_one_wandb_run_without_gaps_or_duplicates(resumed_run):
    _, wandb_dir, first_id, second_id = resumed_run
    assert first_id and second_id == first_id
    run_ids, rows = read_wandb_history(wandb_dir)
    assert run_ids == [first_id, first_id]  # two jobs, two offline files, one run
    train_rows = [row for row in rows if "loss" in row]
    assert [row["_step"] for row in train_rows] == list(range(10, 101, 10))
    for row in train_rows:
        assert all(key in row for key in TRAIN_KEYS), row
        job = 1 if row["_step"] <= 50 else 2  # W&B keeps the crashed job's 40 and 50: it cannot rewrite steps
        assert row["loss"] == pytest.approx(expected_loss(job, row["_step"]))
        assert row["tokens_per_second"] == pytest.approx(TOKENS_PER_STEP)
    eval_steps = [row["_step"] for row in rows if "eval/loss" in row]
    assert eval_steps == [50, 100]


def test_a_resumed_offline_job_finds_every_earlier_job_of_its_run(tmp_path):
    """Earlier jobs' offline files, including a folder W&B suffixed because its job started in the same second as
    the one before (the resumed job of the fixture above got `offline-run-<time>-<id>-1` in CI), and no other run's."""
    folders = [
        "offline-run-20261201_024608-abc",
        "offline-run-20261201_024608-abc-1",
        "offline-run-20261201_024609-xyz",
    ]
    for folder in [*folders, "offline-run-20261201_024610-abc"]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"run-{folder.split('-')[3]}.wandb").write_bytes(b":W&B")
    own = tmp_path / "offline-run-20261201_024610-abc" / "run-abc.wandb"
    found = earlier_job_files(str(tmp_path), "abc", str(own))
    assert sorted(found) == sorted(str(tmp_path / folder / "run-abc.wandb") for folder in folders[:2])


def test_resume_truncates_jsonl_and_purges_tensorboard(resumed_run):
    run_dir, *_ = resumed_run
    records = read_jsonl(run_dir / "metrics.jsonl")
    train = [r for r in records if "loss" in r]
    assert [r["iteration"] for r in train] == list(range(10, 101, 10))
    for record in train:  # 40 and 50 now come from the resumed job
        job = 1 if record["iteration"] <= 30 else 2
        assert record["loss"] == pytest.approx(expected_loss(job, record["iteration"]))
        assert all(key in record for key in TRAIN_KEYS)
    assert [(r["iteration"], r["eval/loss"]) for r in records if "eval/loss" in r] == [(50, 2.5), (100, 2.5)]

    scalars = read_tensorboard(run_dir / "tensorboard")
    assert [step for step, _ in scalars["loss"]] == list(range(10, 101, 10))
    for step, value in scalars["loss"]:
        assert value == pytest.approx(expected_loss(1 if step <= 30 else 2, step), rel=1e-6)  # float32
    assert [step for step, _ in scalars["eval/perplexity"]] == [50, 100]
    assert scalars["eval/perplexity"][-1][1] == pytest.approx(math.exp(2.5), rel=1e-6)
    for key in TRAIN_KEYS:
        assert [step for step, _ in scalars[key]] == list(range(10, 101, 10)), key


# ---------------------------------------------------------------------------------------------------------------
# Derived numbers against hand computations
# ---------------------------------------------------------------------------------------------------------------


def make_processor(tmp_path, clock, **overrides):
    arguments = dict(
        rank=0, world_size=8, flops_per_token=6.0e9, precision="bf16", console_stream=io.StringIO(), clock=clock
    )
    arguments.update(overrides)
    return build_metrics(tmp_path, **arguments)


def test_interval_numbers_match_hand_computation(tmp_path):
    clock = FakeClock()
    metrics = make_processor(tmp_path, clock, precision="float16", peak_tflops_per_gpu=312.0)  # NeoX's spelling
    for step in range(10):
        clock.now += 0.5
        metrics.step_done(
            step + 1,
            loss=3.0 + step,
            lr=2e-4,
            grad_norm=1.0 + step,
            loss_scale=2.0**15,
            tokens=4 * 2048,
            samples=4,
            data_wait_seconds=0.05,
            skipped=(step == 9),
        )
    with metrics.untimed():  # an evaluation: its 7 s must not count
        clock.now += 7.0
    result = metrics.log(10)
    elapsed = 10 * 0.5
    assert result["loss"] == pytest.approx(sum(3.0 + s for s in range(9)) / 9)  # the skipped step left out
    assert result["grad_norm"] == pytest.approx(sum(1.0 + s for s in range(9)) / 9)
    assert result["tokens_per_second"] == pytest.approx(10 * 8192 / elapsed)  # every step's tokens were read
    assert result["samples_per_second"] == pytest.approx(10 * 4 / elapsed)
    tflops = 6.0e9 * (10 * 8192 / elapsed) / 8 / 1e12
    assert result["tflops_per_gpu"] == pytest.approx(tflops)
    assert result["mfu_percent"] == pytest.approx(100 * tflops / 312.0)
    assert result["data_wait_seconds"] == pytest.approx(0.5)
    assert result["data_wait_fraction"] == pytest.approx(0.1)
    assert result["seconds_per_iteration"] == pytest.approx(0.5)
    assert (result["loss_scale"], result["skipped_steps"], result["skipped_steps_total"]) == (32768.0, 1, 1)
    assert result["lr"] == 2e-4

    clock.now += 2.0
    metrics.step_done(11, loss=float("nan"), lr=1e-4, skipped=True, tokens=100)
    second = metrics.log(11)  # the next interval starts at the previous log
    assert "loss" not in second and "grad_norm" not in second
    assert second["skipped_steps_total"] == 2 and second["tokens_per_second"] == pytest.approx(50.0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU behaviour")
def test_cpu_reports_no_mfu_and_no_memory_without_an_override(tmp_path):
    clock = FakeClock()
    metrics = make_processor(tmp_path, clock)
    clock.now += 1.0
    metrics.step_done(1, loss=2.0, lr=1e-3, grad_norm=0.1, loss_scale=1024.0, tokens=10)
    result = metrics.log(1)
    assert "tflops_per_gpu" in result
    assert not {"mfu_percent", "memory_max_allocated_gib", "loss_scale"} & result.keys()  # bf16: no loss scale


def test_eval_perplexity_and_console_lines(tmp_path):
    stream = io.StringIO()
    clock = FakeClock()
    metrics = make_processor(tmp_path, clock, train_iters=1000, console_stream=stream, peak_tflops_per_gpu=989.5)
    assert metrics.log_eval(120, torch.tensor(2.0)) == {"eval/loss": 2.0, "eval/perplexity": math.exp(2.0)}
    assert stream.getvalue() == "iteration 120/1000 | eval loss 2 | eval ppl 7.389\n"
    line = format_console_line(
        {
            "loss": 4.3214,
            "lr": 2.9e-4,
            "grad_norm": 0.8712,
            "tokens_per_second": 14_200,
            "tflops_per_gpu": 2.1,
            "mfu_percent": 41.23,
            "memory_max_allocated_gib": 31.2,
            "memory_max_reserved_gib": 35.0,
            "data_wait_fraction": 0.003,
            "seconds_per_iteration": 1.25,
            "skipped_steps": 0,
        },
        120,
        1000,
    )
    assert line == (
        "iteration 120/1000 | loss 4.321 | lr 0.00029 | grad norm 0.871 | 14.2k tok/s | "
        "2.1 TFLOP/s/GPU | MFU 41.2% | mem 31.2/35.0 GiB | data wait 0.3% | 1.25 s/it"
    )


def test_other_ranks_write_nothing(tmp_path):
    stream = io.StringIO()
    clock = FakeClock()
    metrics = make_processor(tmp_path, clock, rank=3, console_stream=stream, tensorboard_dir=tmp_path / "tb")
    clock.now += 1.0
    metrics.step_done(1, loss=1.0, lr=1.0, tokens=1)
    assert metrics.log(1)["loss"] == 1.0
    metrics.close()
    assert stream.getvalue() == "" and list(tmp_path.iterdir()) == [] and metrics.wandb_run_id is None


def test_jsonl_truncate_drops_later_and_partial_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        "".join(json.dumps({"iteration": i, "loss": i}) + "\n" for i in (10, 20, 30, 40)) + '{"iteration": 50, "lo'
    )  # the crash cut the last line short
    logger = metrics_module.JsonlLogger(path)
    assert logger.truncate_after(20) == 40
    assert [r["iteration"] for r in read_jsonl(path)] == [10, 20]
    logger.log({"loss": 1.5}, 30)
    assert read_jsonl(path)[-1] == {"iteration": 30, "loss": 1.5}


@pytest.mark.parametrize(
    "name, precision, expected",
    [
        ("NVIDIA H100 80GB HBM3", "bf16", 989.5),
        ("NVIDIA H100 PCIe", "bf16", 756.5),
        ("NVIDIA H100 NVL", "fp16", 835.5),
        ("NVIDIA H200", "bf16", 989.5),
        ("NVIDIA GH200 480GB", "bf16", 989.5),
        ("NVIDIA A100-SXM4-80GB", "bf16", 312.0),
        ("NVIDIA A800-SXM4-80GB", "tf32", 156.0),
        ("NVIDIA L40S", "bf16", 362.0),
        ("NVIDIA L4", "bf16", 121.0),
        ("NVIDIA H20", "bf16", 148.0),
        ("NVIDIA A100 80GB PCIe", "fp32", 19.5),
        ("Tesla V100-SXM2-32GB", "bf16", None),
        ("Some GPU", "bf16", None),
    ],
)
def test_device_peak_table(name, precision, expected):
    assert peak_tflops_for_device(name, precision) == expected


@pytest.mark.gpu
def test_cuda_memory_peaks_and_mfu_of_real_matmuls(tmp_path):
    """bf16 matrix products as the "steps": MFU from the device table must equal the one timed independently
    around the loop, and memory peaks must be reported and reset at each log."""
    size, steps = 8192, 50
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(10):  # warm-up outside the timed interval
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    metrics = build_metrics(
        tmp_path,
        rank=0,
        world_size=1,
        flops_per_token=2.0 * size * size,
        precision="bf16",
        console_stream=io.StringIO(),
    )  # a "token" = one row of a @ b
    for step in range(steps):
        product = a @ b
        metrics.step_done(step + 1, loss=product[0, 0].float(), lr=1.0, tokens=size)
    result = metrics.log(steps)  # reading the losses waits for the GPU
    elapsed = time.perf_counter() - start
    peak = peak_tflops_for_device(torch.cuda.get_device_name(), "bf16")
    assert peak is not None, torch.cuda.get_device_name()
    hand_mfu = 100 * 2.0 * size**3 * steps / elapsed / 1e12 / peak
    assert result["mfu_percent"] == pytest.approx(hand_mfu, rel=0.1)
    assert 5.0 < result["mfu_percent"] < 100.0, result
    assert result["memory_max_allocated_gib"] >= 3 * size * size * 2 / 2**30 * 0.99  # a, b and a product
    assert result["memory_max_reserved_gib"] >= result["memory_max_allocated_gib"]
    del product
    metrics.step_done(steps + 1, loss=0.0, lr=1.0, tokens=1)
    assert metrics.log(steps + 1)["memory_max_allocated_gib"] < result["memory_max_allocated_gib"]  # reset


def test_eval_tasks_scores_reach_the_console_line(tmp_path):
    stream = io.StringIO()
    metrics = build_metrics(
        tmp_path, rank=0, world_size=1, flops_per_token=None, precision="fp32", console_stream=stream
    )
    logged = metrics.log_eval_tasks(40, {"piqa/acc": 0.61234, "piqa/acc_norm": 0.5})
    assert logged == {"eval_tasks/piqa/acc": 0.61234, "eval_tasks/piqa/acc_norm": 0.5}
    assert stream.getvalue() == "iteration 40 | eval_tasks/piqa/acc 0.6123 | eval_tasks/piqa/acc_norm 0.5\n"
    assert read_jsonl(tmp_path / "metrics.jsonl") == [{"iteration": 40, **logged}]
