"""Nothing wrong passes silently (the trainer's main, train.py's, in fresh processes from the test fork server, and a
real deepy.py run; real DeepSpeed checkpoints):

- a weights or optimizer file changed in place (same size) is found by its digest when resuming, named, and the
  previous complete step is loaded instead; weights that are not finite but match their digest (as an older
  writer could have saved them) are refused after loading the same way (one resume meets all three, one after
  the other);
- non-finite weights are never saved as a complete step;
- steps saved after skipped updates only never prune the good checkpoints before them;
- start-up refuses, in seconds and in one line naming the YAML file: a shard whose .bin and .idx disagree (also
  through deepy.py, whose ranks used to name `<resolved config>`), a tokenizer whose vocabulary differs from the
  checkpoint's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neox_metala.training import checkpoint

from dist_helpers import free_port, run_workers
from hooked_train import NAN_TEST_HOOK
from runtime_helpers import REPO, SMALL_MODEL, run_main, sample_data_settings, train_worker, write_configs

pytestmark = pytest.mark.multiproc
MODEL = {**SMALL_MODEL, "train_iters": 8, "checkpoint_factor": 2, "keep_last_n_checkpoints": 4, "eval_iters": 0}
STARTUP_LIMIT_S = 60  # imports and process-group start-up on 2 CI cores; the checks themselves take milliseconds


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sample_data):
    """A run of 8 steps with complete checkpoints at 2, 4, 6 and 8 (copied by each test before it changes them):
    the trainer's `main` in a process from the test fork server (the runs under test are train.py processes)."""
    work = tmp_path_factory.mktemp("trained")
    files = write_configs(
        work / "configs",
        model=MODEL,
        data=sample_data_settings(sample_data),
        run={"save": str(work / "ckpt"), "load": str(work / "ckpt"), "log_dir": str(work / "run")},
    )
    (exit_code,) = run_workers(train_worker, 1, work / "ranks", argv=["-d", str(work / "configs"), *files])
    assert exit_code == 0
    return work, sample_data_settings(sample_data)


def resume_copy(trained, tmp_path: Path, **model) -> tuple[Path, list[str]]:
    work, data = trained
    shutil.copytree(work / "ckpt", tmp_path / "ckpt")
    files = write_configs(
        tmp_path / "configs",
        model={**MODEL, **model},
        data=data,
        run={"save": str(tmp_path / "ckpt"), "load": str(tmp_path / "ckpt"), "log_dir": str(tmp_path / "run")},
    )
    return tmp_path / "ckpt", files


def resumed_from(output: str) -> int:
    line = next(line for line in output.splitlines() if "resumed from" in line)
    return int(line.split("global_step")[1].split()[0])


def change_in_place(path: Path) -> None:
    """4 KB of garbage in the middle of the file, its size unchanged."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(4096))
    assert path.stat().st_size == size


def nan_with_matching_digests(step_dir: Path) -> None:
    """A NaN in the weights, with the digests in the completion marker updated to match (as a writer without the
    finiteness checks could have left it)."""
    weights_file = step_dir / "mp_rank_00_model_states.pt"
    state = torch.load(weights_file, map_location="cpu", weights_only=False)
    name = next(k for k, v in state["module"].items() if torch.is_tensor(v) and v.is_floating_point())
    state["module"][name].view(-1)[0] = float("nan")
    torch.save(state, weights_file)
    marker = json.loads((step_dir / checkpoint.COMPLETE_MARKER).read_text())
    marker["files"][weights_file.name] = {
        "bytes": weights_file.stat().st_size,
        "sha256": checkpoint.file_digest(str(weights_file)),
    }
    (step_dir / checkpoint.COMPLETE_MARKER).write_text(json.dumps(marker))


def test_unsound_steps_are_refused_one_after_the_other_and_the_newest_sound_one_loaded(trained, tmp_path):
    """One resume through three unsound steps, newest first, each refused by name and the step before it tried:
    8 holds a NaN that matches its digests (refused after loading it), 6 has its optimizer file and 4 its weights
    file changed in place (same size: refused by their digests). The job loads 2 and trains on."""
    ckpt, files = resume_copy(trained, tmp_path, train_iters=10)
    nan_with_matching_digests(ckpt / "global_step8")
    changed = {}
    for step, kind in ((6, "optim_states"), (4, "model_states")):
        changed[step] = next((ckpt / f"global_step{step}").glob(f"*{kind}.pt"))
        change_in_place(changed[step])
        assert checkpoint.incompleteness(str(ckpt / f"global_step{step}")) is None, "the size check cannot see it"
    result = run_main(tmp_path / "configs", files, tmp_path / "resume.log")
    assert result.returncode == 0, result.output[-3000:]
    assert "global_step8 is unusable: non-finite values after loading it" in result.output, "finite after loading"
    for step, target in changed.items():
        assert f"global_step{step} is unusable: {target.name} differ from the digests" in result.output, target.name
    assert resumed_from(result.output) == 2


def test_a_step_saved_again_over_its_earlier_save_is_complete(trained, tmp_path):
    """A job killed after step 8's marker but before `latest` named it resumes from 6 and saves 8 again into that
    folder: the new marker describes the new files only (not the earlier marker, whose size it changes: CI found
    such a step refused as "complete.json is missing or has the wrong size" at the next resume, session 25), and no
    file of the earlier save stays (one of another layout, say, would join this save's shards)."""
    ckpt, files = resume_copy(trained, tmp_path)
    (ckpt / checkpoint.LATEST).write_text("global_step6")
    earlier = checkpoint.read_marker(str(ckpt / "global_step8"))
    (ckpt / "global_step8" / "zero_pp_rank_1_mp_rank_00_optim_states.pt").write_bytes(b"of an earlier layout")
    result = run_main(tmp_path / "configs", files, tmp_path / "resume.log")
    assert result.returncode == 0, result.output[-3000:]
    assert resumed_from(result.output) == 6
    marker = checkpoint.read_marker(str(ckpt / "global_step8"))
    assert marker["time"] != earlier["time"] and checkpoint.COMPLETE_MARKER not in marker["files"]
    assert not (ckpt / "global_step8" / "zero_pp_rank_1_mp_rank_00_optim_states.pt").exists()
    assert checkpoint.incompleteness(str(ckpt / "global_step8")) is None


def test_non_finite_weights_are_never_saved_as_complete(single_rank, tmp_path):
    import deepspeed

    from neox_metala.layers.settings import BlockSettings
    from neox_metala.model import gpt

    settings = BlockSettings(hidden_size=16, num_attention_heads=2, num_layers=1)
    model = gpt.SequentialModel(gpt.layer_specs(settings, ["metala"], 64, tied=True))
    engine, *_ = deepspeed.initialize(
        model=model,
        model_parameters=model.parameters(),
        config={
            "train_micro_batch_size_per_gpu": 1,
            "steps_per_print": 10**9,
            "zero_optimization": {"stage": 1},
            "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "torch_adam": True}},
        },
    )
    with torch.no_grad():
        next(engine.module.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(checkpoint.CheckpointError, match="refusing to save iteration 3 .* non-finite weights"):
        checkpoint.save(engine, str(tmp_path), 3, {}, "")
    assert not (tmp_path / "global_step3" / checkpoint.COMPLETE_MARKER).exists()
    assert not (tmp_path / checkpoint.LATEST).exists()


def test_steps_after_skipped_updates_only_do_not_prune_good_checkpoints(trained, tmp_path):
    """keep_last_n_checkpoints 2 and every step after 8 skipped (non-finite): 2, 4 and 6 were pushed out before;
    now the newest good ones (6 and 8) stay, and the skipped-only steps 10 and 12 are marked."""
    ckpt, files = resume_copy(trained, tmp_path, train_iters=12, keep_last_n_checkpoints=2, max_consecutive_nonfinite=0)
    result = run_main(tmp_path / "configs", files, tmp_path / "resume.log", {NAN_TEST_HOOK: "9,10,11,12"})
    assert result.returncode == 0, result.output[-3000:]
    complete = [i for i, name in checkpoint.step_dirs(str(ckpt)) if checkpoint.incompleteness(str(ckpt / name)) is None]
    assert complete == [6, 8, 10, 12]
    only_skipped = {
        i: checkpoint.read_marker(str(ckpt / f"global_step{i}")).get("only_skipped_updates") for i in complete
    }
    assert only_skipped == {6: False, 8: False, 10: True, 12: True}


def truncated_copy(prefix: str, directory: Path, suffix: str, cut: int) -> str:
    directory.mkdir()
    for path in Path(prefix).parent.glob(Path(prefix).name + ".*"):
        shutil.copy(path, directory / path.name)
    target = directory / (Path(prefix).name + suffix)
    with open(target, "r+b") as f:
        f.truncate(target.stat().st_size - cut)
    return str(directory / Path(prefix).name)


def test_a_damaged_shard_is_refused_at_start_naming_the_yaml_file_through_deepy(trained, tmp_path):
    _, data = trained
    bad = truncated_copy(data["train_data_paths"][0], tmp_path / "bad", ".bin", 1000)
    files = write_configs(
        tmp_path / "configs",
        model=MODEL,
        data={**data, "train_data_paths": [bad]},
        run={"save": str(tmp_path / "ckpt"), "master_port": free_port()},
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "deepy.py", "train.py", "-d", str(tmp_path / "configs"), *files],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert time.monotonic() - started < STARTUP_LIMIT_S
    error = next(line for line in result.stderr.splitlines() if line.startswith("train.py: error"))
    assert f"{tmp_path / 'configs' / 'data.yml'}: train_data_paths: {bad}.bin has" in error
    assert "<resolved config>" not in error and "Traceback" not in result.stderr


def test_another_tokenizer_than_the_checkpoints_is_refused_at_start(trained, tmp_path):
    from tokenizers import Tokenizer, models

    vocab_file = tmp_path / "small-tokenizer.json"
    Tokenizer(
        models.WordLevel({"<|endoftext|>": 0, **{f"t{i}": i for i in range(1, 300)}}, unk_token="<|endoftext|>")
    ).save(str(vocab_file))
    _, data = trained
    shutil.copytree(trained[0] / "ckpt", tmp_path / "ckpt")
    files = write_configs(
        tmp_path / "configs",
        model=MODEL,
        data={**data, "vocab_file": str(vocab_file)},
        run={"load": str(tmp_path / "ckpt")},
    )
    result = run_main(tmp_path / "configs", files, tmp_path / "start.log")
    assert result.returncode == 2 and result.seconds < STARTUP_LIMIT_S, result.output[-3000:]
    error = next(line for line in result.output.splitlines() if line.startswith("train.py: error"))
    assert "was trained with a vocabulary of 8192 tokens" in error and "has 300 (padded 384)" in error
    assert f"(from {tmp_path / 'configs' / 'data.yml'})" in error
