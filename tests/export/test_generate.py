"""`python -m neox_metala.generate` from a checkpoint: the command line, and a decode state of constant size."""

import json

import pytest
import torch

pytestmark = pytest.mark.multiproc


def cache_bytes(cache):
    return sum(
        t.numel() * t.element_size()
        for c in cache
        for t in (c.conv_state, c.recurrent_state, c.keys, c.values)
        if t is not None
    )


def test_generate_command_line_matches_the_library(checkpoints, tmp_path, single_rank):
    from neox_metala.data.tokenizers import load_tokenizer
    from neox_metala.generate import generate_tokens, main
    from neox_metala.training.checkpoint_files import find_step_dir, load_single_rank_model

    load_dir = str(checkpoints["metala"][0])
    (tmp_path / "prompts.txt").write_text("Once upon a time\nThe capital of\n")
    assert (
        main(
            [
                "--load",
                load_dir,
                "--input",
                str(tmp_path / "prompts.txt"),
                "--max-new-tokens",
                "6",
                "--output",
                str(tmp_path / "out.jsonl"),
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["prompt"] for line in lines] == ["Once upon a time", "The capital of"]

    model, args = load_single_rank_model(find_step_dir(load_dir))
    tokenizer = load_tokenizer("HFTokenizer", args.data.vocab_file)
    ids = generate_tokens(
        model,
        tokenizer.encode_batch(["Once upon a time", "The capital of"]),
        6,
        tokenizer.pad_id,
        tokenizer.eod_id,
        tokenizer.vocab_size,
    )
    assert [line["completion"] for line in lines] == [tokenizer.decode(i) for i in ids]


def test_metala_decode_state_does_not_grow_with_the_generated_length(checkpoints, single_rank):
    from neox_metala.model import gpt
    from neox_metala.training.checkpoint_files import find_step_dir, load_single_rank_model

    model, _ = load_single_rank_model(find_step_dir(str(checkpoints["metala"][0])))
    cache, sizes = model.new_cache(), []
    token = torch.tensor([[5]])
    with torch.no_grad():
        model((torch.tensor([[1, 2, 3]]), gpt.no_padding_mask()), cache=cache)
        for _ in range(40):
            model((token, gpt.no_padding_mask()), cache=cache)
            sizes.append(cache_bytes(cache))
    assert len(set(sizes)) == 1 and sizes[0] > 0
