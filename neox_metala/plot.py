"""Plot a run's loss and throughput from RUN_DIR/metrics.jsonl (written by training.metrics).

    python -m neox_metala.plot RUN_DIR [-o out.png]

Two panels against iteration: train loss (and eval loss when present), and tokens/s. Prints the PNG's path.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; set before anything imports pyplot

from matplotlib.figure import Figure  # noqa: E402  (after the backend choice)

METRICS_FILENAME = "metrics.jsonl"


class MetricsFileError(Exception):
    """The run directory has no usable metrics file."""


def load_metrics(path: Path) -> list[dict]:
    """The file's records; a line cut short by a crash is skipped."""
    if not path.is_file():
        raise MetricsFileError(
            f"no metrics file at {path}: is this a run directory, and has the run logged at least one interval?"
        )
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "iteration" in record:
            records.append(record)
    if not records:
        raise MetricsFileError(f"{path} holds no metrics records (it is empty or unreadable)")
    return records


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(record["iteration"], record[key]) for record in records if key in record]
    return [iteration for iteration, _ in points], [value for _, value in points]


def make_figure(records: list[dict], title: str = "") -> Figure:
    """Loss (train, eval) above tokens/s, sharing the iteration axis."""
    figure = Figure(figsize=(10, 7), dpi=100, layout="constrained")
    loss_axes, throughput_axes = figure.subplots(2, 1, sharex=True)
    for key, label, style in (("loss", "train", "-"), ("eval/loss", "eval", "o-")):
        iterations, values = _series(records, key)
        if iterations:
            loss_axes.plot(iterations, values, style, label=label, markersize=3)
    loss_axes.set_ylabel("loss")
    loss_axes.legend()
    loss_axes.grid(alpha=0.3)
    iterations, values = _series(records, "tokens_per_second")
    throughput_axes.plot(iterations, values, "-", color="tab:green", label="tokens/s")
    throughput_axes.set_ylabel("tokens / s (all GPUs)")
    throughput_axes.set_xlabel("iteration")
    throughput_axes.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    return figure


def plot_run(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the two-panel PNG (default RUN_DIR/metrics.png) and return its path."""
    run_dir = Path(run_dir)
    records = load_metrics(run_dir / METRICS_FILENAME)
    output = Path(output) if output else run_dir / "metrics.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    make_figure(records, title=run_dir.resolve().name).savefig(output, format="png")
    return output


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m neox_metala.plot", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="the run directory holding metrics.jsonl")
    parser.add_argument("-o", "--output", help="PNG path (default: RUN_DIR/metrics.png)")
    args = parser.parse_args(argv)
    try:
        print(plot_run(args.run_dir, args.output))
    except MetricsFileError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
