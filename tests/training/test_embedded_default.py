"""The README's main job: configs/tiny.yml on the bundled sample corpus through deepy.py (its own file: at several
minutes on 2 CI cores the longest test, so that `pytest -n 2` can run it beside the others, first: conftest.py)."""

import pytest

from runtime_helpers import REPO, metrics, run_deepy, sample_data_settings, setup_yaml, write_configs

pytestmark = pytest.mark.multiproc


def test_embedded_default_loss_falls_by_30_percent(tmp_path, sample_data):
    """configs/tiny.yml as the README's main job runs it, through deepy.py."""
    files = write_configs(
        tmp_path, setup={**sample_data_settings(sample_data), **setup_yaml(tmp_path, "tiny"), "num_workers": 1}
    )
    # Speed only, the same numbers: one thread, since under `pytest -n 2` on 2 cores the other worker holds the
    # second core and two OpenMP threads sharing one busy core made the run ~1.7x slower (the quickstart, alone,
    # uses both); and glibc keeping freed memory for reuse: each step's 1024 x 8192 fp32 logits chunk is 32 MiB,
    # glibc's largest mmap threshold, so by default every such buffer is a fresh mmap whose pages fault in again
    # (~0.3 s of system time per step here).
    speed = {"OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30)}
    result = run_deepy(tmp_path, [str(REPO / "configs/tiny.yml"), *files], env=speed)
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [r["loss"] for r in metrics(tmp_path / "tiny/run") if "loss" in r]
    assert len(losses) == 20 and losses[-1] <= 0.7 * losses[0], losses
