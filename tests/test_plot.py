"""neox_metala.plot draws both panels from a generated metrics.jsonl and fails clearly without one."""

import json
import struct

import pytest

from neox_metala import plot


def write_metrics(run_dir, with_eval=True):
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for iteration in range(10, 201, 10):
        lines.append(
            {
                "iteration": iteration,
                "loss": 10.0 / (1 + iteration / 50),
                "lr": 3e-4,
                "tokens_per_second": 14_000 + iteration,
            }
        )
        if with_eval and iteration % 50 == 0:
            lines.append({"iteration": iteration, "eval/loss": 11.0 / (1 + iteration / 50), "eval/perplexity": 1.0})
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (run_dir / "metrics.jsonl").write_text(text + '{"iteration": 210, "lo')  # a crash's partial line
    return lines


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_figure_has_loss_and_throughput_panels(tmp_path):
    lines = write_metrics(tmp_path / "run")
    figure = plot.make_figure(plot.load_metrics(tmp_path / "run" / "metrics.jsonl"))
    loss_axes, throughput_axes = figure.axes
    train, evaluation = loss_axes.get_lines()
    assert (train.get_label(), evaluation.get_label()) == ("train", "eval")
    assert list(train.get_xdata()) == list(range(10, 201, 10))
    assert list(train.get_ydata()) == [line["loss"] for line in lines if "loss" in line]
    assert list(evaluation.get_xdata()) == [50, 100, 150, 200]
    (throughput,) = throughput_axes.get_lines()
    assert list(throughput.get_ydata()) == [14_000 + i for i in range(10, 201, 10)]
    assert throughput_axes.get_xlabel() == "iteration"


def test_cli_writes_a_png_and_prints_its_path(tmp_path, capsys):
    write_metrics(tmp_path / "run", with_eval=False)
    output = tmp_path / "plots" / "out.png"
    plot.main([str(tmp_path / "run"), "-o", str(output)])
    assert capsys.readouterr().out.strip() == str(output)
    assert png_size(output) == (1000, 700)  # figsize (10, 7) at 100 dpi
    assert output.stat().st_size > 20_000  # two panels of lines and text, not a blank image
    plot.main([str(tmp_path / "run")])
    assert png_size(tmp_path / "run" / "metrics.png") == (1000, 700)


def test_missing_or_empty_file_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no metrics file at .*metrics.jsonl"):
        plot.main([str(tmp_path)])
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(SystemExit, match="holds no metrics records"):
        plot.main([str(tmp_path)])
