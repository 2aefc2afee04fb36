"""The README's main job: configs/tiny.yml on the bundled sample corpus through deepy.py (its own file: at ~2
minutes the longest test, so that `pytest -n 2` can run it beside the others)."""

import pytest

from runtime_helpers import REPO, metrics, run_deepy, sample_data_settings, setup_yaml, write_configs

pytestmark = pytest.mark.multiproc


def test_embedded_default_loss_falls_by_30_percent(tmp_path, sample_data):
    """configs/tiny.yml as the README's main job runs it, through deepy.py."""
    files = write_configs(
        tmp_path, setup={**sample_data_settings(sample_data), **setup_yaml(tmp_path, "tiny"), "num_workers": 1}
    )
    # One process: both cores, as the quickstart runs it (the 2-process tests keep one thread each).
    result = run_deepy(tmp_path, [str(REPO / "configs/tiny.yml"), *files], env={"OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [r["loss"] for r in metrics(tmp_path / "tiny/run") if "loss" in r]
    assert len(losses) == 20 and losses[-1] <= 0.7 * losses[0], losses
