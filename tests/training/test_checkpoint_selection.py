"""Which checkpoint a resume uses: `latest` when complete, else the newest complete one before it, and an
error (never a silent fresh start) when a checkpoint was completed (`latest` written) but none is usable now;
unfinished folders of a first save that never completed start afresh, with a warning."""

import json
import logging

import pytest

from neox_metala.training import checkpoint


def make_step(save_dir, iteration, complete=True, corrupt=False):
    step_dir = save_dir / f"global_step{iteration}"
    step_dir.mkdir(parents=True)
    (step_dir / "mp_rank_00_model_states.pt").write_bytes(b"x" * (100 + iteration))
    if complete:
        files = {name.name: name.stat().st_size for name in step_dir.iterdir()}
        (step_dir / checkpoint.COMPLETE_MARKER).write_text(json.dumps({"iteration": iteration, "files": files}))
    if corrupt:  # truncated after the marker was written, e.g. a disk that filled up
        (step_dir / "mp_rank_00_model_states.pt").write_bytes(b"x")


def test_latest_complete_step_is_used(tmp_path):
    make_step(tmp_path, 10)
    make_step(tmp_path, 20)
    (tmp_path / "latest").write_text("global_step20")
    assert checkpoint.find_resume_tag(str(tmp_path)) == "global_step20"


@pytest.mark.parametrize("broken", ["no-marker", "truncated-file", "missing-folder"])
def test_unusable_latest_falls_back_to_previous_complete_step(tmp_path, broken, caplog):
    make_step(tmp_path, 10)
    if broken != "missing-folder":
        make_step(tmp_path, 20, complete=broken != "no-marker", corrupt=broken == "truncated-file")
    (tmp_path / "latest").write_text("global_step20")
    with caplog.at_level(logging.WARNING):
        assert checkpoint.find_resume_tag(str(tmp_path)) == "global_step10"
    assert "global_step20" in caplog.text and "unusable" in caplog.text


def test_unfinished_newer_step_without_latest_update_is_ignored(tmp_path):
    make_step(tmp_path, 10)
    make_step(tmp_path, 20, complete=False)  # killed during the save: latest still names step 10
    (tmp_path / "latest").write_text("global_step10")
    assert checkpoint.find_resume_tag(str(tmp_path)) == "global_step10"


def test_checkpoints_but_none_complete_is_an_error(tmp_path):
    make_step(tmp_path, 10, complete=False)
    (tmp_path / "latest").write_text("global_step10")
    with pytest.raises(checkpoint.CheckpointError, match="none is complete"):
        checkpoint.find_resume_tag(str(tmp_path))


def test_a_first_save_that_never_completed_means_fresh_start(tmp_path, caplog):
    make_step(tmp_path, 2, complete=False)  # killed in its first save: no marker, and `latest` never written
    with caplog.at_level(logging.WARNING):
        assert checkpoint.find_resume_tag(str(tmp_path)) is None
    assert "global_step2" in caplog.text and "never completed" in caplog.text


def test_empty_or_missing_folder_means_fresh_start(tmp_path):
    assert checkpoint.find_resume_tag(str(tmp_path)) is None
    assert checkpoint.find_resume_tag(str(tmp_path / "not-there")) is None


def test_prune_keeps_the_newest_complete_steps(tmp_path):
    for iteration in (10, 20, 30):
        make_step(tmp_path, iteration)
    make_step(tmp_path, 5, complete=False)
    checkpoint.prune(str(tmp_path), keep_last=2)
    assert [name for _, name in checkpoint.step_dirs(str(tmp_path))] == ["global_step20", "global_step30"]


def test_checkpoint_of_another_model_is_refused_with_both_values(tmp_path):
    make_step(tmp_path, 10)
    (tmp_path / "global_step10" / checkpoint.CONFIG_FILE).write_text("hidden_size: 128\nnum_layers: 4\n")
    checkpoint.check_same_model(str(tmp_path), "global_step10", {"hidden_size": 128, "num_layers": 4}, lambda key: None)
    with pytest.raises(checkpoint.CheckpointError, match=r"hidden_size 128 but this run has 2048 \(from a\.yml\)"):
        checkpoint.check_same_model(
            str(tmp_path), "global_step10", {"hidden_size": 2048, "num_layers": 4}, lambda key: "a.yml"
        )


def test_one_layer_stack_written_two_ways_is_the_same_model(tmp_path):
    make_step(tmp_path, 10)
    (tmp_path / "global_step10" / checkpoint.CONFIG_FILE).write_text(
        'attention_config: [[["metala", "attention"], 2]]\n'
    )
    same = [[["metala", "attention"], 1], [["metala", "attention"], 1]]
    checkpoint.check_same_model(str(tmp_path), "global_step10", {"attention_config": same}, lambda key: None)
    other = [[["metala"], 2], [["attention"], 2]]  # same layer counts, another order
    with pytest.raises(checkpoint.CheckpointError, match="attention_config"):
        checkpoint.check_same_model(str(tmp_path), "global_step10", {"attention_config": other}, lambda key: None)


def test_index_cache_is_renamed_into_place_only_when_complete(tmp_path, sample_data, single_rank):
    """A killed first build leaves `<key>.partial`, which the next build replaces instead of trusting."""
    from neox_metala.data.datasets import DatasetTokenizerInfo, DataSources, build_datasets
    from neox_metala.data.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(sample_data["tokenizer_type"], sample_data["vocab_file"])
    info = DatasetTokenizerInfo(tokenizer.vocab_size, tokenizer.eod_id, tokenizer.fingerprint)
    sources = DataSources(
        train_paths=sample_data["train_data_paths"],
        valid_paths=sample_data["valid_data_paths"],
        test_paths=sample_data["test_data_paths"],
    )
    args = (sources, 32, 1, (64, 16, 16), info)
    reference = build_datasets(*args, None)[0]
    first = build_datasets(*args, str(tmp_path))[0]
    (key,) = [p.name for p in tmp_path.iterdir()]
    assert not key.endswith(".partial")
    # Simulate a build killed half-way: truncated cache files in a leftover .partial folder, no final folder.
    (tmp_path / key).rename(tmp_path / f"{key}.partial")
    for npy in (tmp_path / f"{key}.partial").glob("*.npy"):
        npy.write_bytes(npy.read_bytes()[:10])
    again = build_datasets(*args, str(tmp_path))[0]
    assert [p.name for p in tmp_path.iterdir()] == [key]
    for index in (0, 7, 63):
        assert (reference[index]["tokens"] == first[index]["tokens"]).all()
        assert (reference[index]["tokens"] == again[index]["tokens"]).all()
