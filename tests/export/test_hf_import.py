"""`python -m neox_metala.export neox`: an official-layout MetaLA folder -> our checkpoint (any TP/PP), which the
trainer's load path accepts with a fresh optimizer; ours -> HF -> ours is bit-identical."""

import pytest
import torch

from checkpoint_helpers import TOKENIZER, canonical_name
from dist_helpers import run_workers
from official_layout import OFFICIAL_CONFIG, randomized, write_official_folder

pytestmark = pytest.mark.multiproc
TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def cpu_ranks_from_the_test_fork_server(monkeypatch):
    """The import's CPU ranks (parallel.run_cpu_ranks) start from the fork server of tests/dist_helpers.py, which
    has imported torch, DeepSpeed and the package once, instead of as fresh interpreters that import them again."""
    from neox_metala.parallel import state

    monkeypatch.setattr(state, "CPU_RANKS_START_METHOD", "forkserver")


def rel_err(actual, expected):
    return ((actual - expected).norm() / expected.norm()).item()


def full_state(load_dir):
    from neox_metala.training.checkpoint_files import (
        checkpoint_config,
        find_step_dir,
        model_description,
        read_full_state,
    )

    step_dir = find_step_dir(str(load_dir))
    return read_full_state(step_dir, *model_description(checkpoint_config(step_dir)))


def resume_worker(rank, world_size, load_dir):
    """What Trainer._resume does, with the trainer's engine: the checkpoint loads, restarts at iteration 0 with a
    fresh optimizer, and a training step runs from the imported weights."""
    from neox_metala import parallel
    from neox_metala.data.tokenizers import load_tokenizer
    from neox_metala.model import gpt
    from neox_metala.training import checkpoint
    from neox_metala.training.checkpoint_files import checkpoint_config
    from neox_metala.training.engine import build_model, initialize_engine
    from neox_metala.training.trainer import TrainState

    tag = checkpoint.find_resume_tag(load_dir)
    args = checkpoint_config(f"{load_dir}/{tag}")
    args.resolve(world_size)
    tokenizer = load_tokenizer(args.data.tokenizer_type, args.data.vocab_file)
    record = {"vocab_size": tokenizer.vocab_size, "padded_vocab_size": 8192, "fingerprint": tokenizer.fingerprint}
    checkpoint.check_same_model(load_dir, tag, args.to_dict(), args.source_of, record)
    layout = parallel.initialize(args.parallel.model_parallel_size, args.parallel.pipeline_stages)
    engine = initialize_engine(args, build_model(args, layout, 8192))
    tag, client_state = checkpoint.load_newest_sound(engine, load_dir, tag)
    assert TrainState(**client_state["train_state"]).iteration == 0
    weights = {canonical_name(n): p.detach().clone() for n, p in engine.module.named_parameters()}
    tokens = torch.randint(0, 8192, (1, 9), generator=torch.Generator().manual_seed(0))
    loss = gpt.cross_entropy_loss(engine((tokens[:, :-1], gpt.no_padding_mask())), (tokens[:, 1:], torch.ones(1, 8)))
    engine.backward(loss)
    engine.step()
    return {
        "train_state": client_state["train_state"],
        "weights": weights,
        "loss": loss.item(),
        "optimizer_steps": engine.global_steps,
    }


def test_official_checkpoint_imports_into_tp2_and_resumes(tmp_path, single_rank):
    from neox_metala.export.__main__ import main
    from neox_metala.model.reshard import split_tp_shard, tp_layout
    from neox_metala.training.checkpoint_files import find_step_dir, load_single_rank_model

    official = randomized(OFFICIAL_CONFIG, seed=21).double().eval()
    write_official_folder(official, tmp_path / "official", TOKENIZER)
    main(["neox", "--hf", str(tmp_path / "official"), "--out", str(tmp_path / "ours"), "--model-parallel-size", "2"])

    # Both in float64, so the comparison sees conversion mistakes rather than float32 rounding (~1e-5 relative in
    # this small random model, whose per-head norms over 8 channels amplify it). What remains is the block RMS
    # norms, which compute in float32 as the official model's do (~3e-7).
    ours, _ = load_single_rank_model(find_step_dir(str(tmp_path / "ours")), dtype=torch.float64)
    tokens = torch.randint(0, 8192, (2, 13), generator=torch.Generator().manual_seed(3))
    from neox_metala.model import gpt

    with torch.no_grad():
        expected = official(tokens)
        got = ours((tokens, gpt.no_padding_mask())).transpose(0, 1)
    assert rel_err(got, expected) <= 1e-6

    ranks = run_workers(resume_worker, 2, tmp_path / "resume", load_dir=str(tmp_path / "ours"))
    full = full_state(tmp_path / "ours")
    for rank, result in enumerate(ranks):
        assert result["train_state"]["iteration"] == 0 and result["optimizer_steps"] == 1
        assert torch.isfinite(torch.tensor(result["loss"]))
        for name, weight in result["weights"].items():
            param_layout = tp_layout(dict(ours.named_parameters())[name])
            assert torch.equal(weight, split_tp_shard(full[name], 2, rank, *param_layout)), name


def test_ours_to_hf_to_ours_is_bit_identical(checkpoints, exported, tmp_path):
    from safetensors.torch import load_file

    from neox_metala.export.hf import export_hf
    from neox_metala.export.neox import import_hf

    import_hf(exported["hybrid"], str(tmp_path / "pp2"), tp=1, pp=2)
    original, again = full_state(checkpoints["hybrid"][0]), full_state(tmp_path / "pp2")
    assert sorted(again) == sorted(original)
    assert all(torch.equal(again[key], original[key]) for key in original)
    export_hf(str(tmp_path / "pp2"), str(tmp_path / "hf-again"))
    first = load_file(f"{exported['hybrid']}/model.safetensors")
    second = load_file(f"{tmp_path}/hf-again/model.safetensors")
    assert all(torch.equal(first[key], second[key]) for key in first) and sorted(first) == sorted(second)


def test_import_refuses_a_config_that_contradicts_the_model(tmp_path):
    from neox_metala.export.convert import ConversionError
    from neox_metala.export.neox import import_config

    (tmp_path / "run.yml").write_text("hidden_size: 64\n")
    with pytest.raises(ConversionError, match="hidden_size is 64 but the Hugging Face model has 32"):
        import_config(OFFICIAL_CONFIG, str(tmp_path / "out"), 1, 0, 1, ["run.yml"], str(tmp_path), TOKENIZER)
