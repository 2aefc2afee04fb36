"""`python -m neox_metala.export hf`: real checkpoints (TP=1, TP=2, PP=2; MetaLA, attention, hybrid) -> a folder
that transformers loads with trust_remote_code, whose logits and greedy generations equal our model's (fp32)."""

import json

import pytest
import torch

from checkpoint_helpers import VOCAB, probe_tokens
from official_layout import OfficialLayoutMetaLA

pytestmark = pytest.mark.multiproc
TOLERANCE = 1e-5


def rel_err(actual, expected):
    return ((actual - expected).norm() / expected.norm()).item()


def load_hf(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True, dtype=torch.float32).eval()


def hf_logits(model, tokens, mask=None):
    with torch.no_grad():
        return model(input_ids=tokens, attention_mask=mask, use_cache=False).logits


@pytest.mark.parametrize("stack", ["metala", "attention", "hybrid"])
def test_exported_model_logits_equal_ours(checkpoints, exported, stack):
    reference = checkpoints[stack][1]
    got = hf_logits(load_hf(exported[stack]), probe_tokens())
    assert got.shape == reference.shape == (2, 11, VOCAB)
    assert rel_err(got, reference) <= TOLERANCE


@pytest.mark.parametrize("layout", ["hybrid-tp2", "hybrid-pp2"])
def test_export_of_tp2_and_pp2_checkpoints_equals_the_single_rank_one(checkpoints, exported, layout):
    from safetensors.torch import load_file

    expected = load_file(f"{exported['hybrid']}/model.safetensors")
    got = load_file(f"{exported[layout]}/model.safetensors")
    assert sorted(got) == sorted(expected)
    assert all(torch.equal(got[key], expected[key]) for key in expected), "TP/PP shards merged differently"
    assert rel_err(hf_logits(load_hf(exported[layout]), probe_tokens()), checkpoints["hybrid"][1]) <= TOLERANCE


def test_exported_folder_has_official_keys_and_config(exported):
    from safetensors.torch import load_file

    config = json.load(open(f"{exported['official']}/config.json"))
    for key, value in {
        "model_type": "metala",
        "decoder_embed_dim": 32,
        "decoder_layers": 2,
        "decoder_attention_heads": 4,
        "glu_dim": 96,
        "norm_type": "simplermsnorm",
        "tie_word_embeddings": False,
        "vocab_size": VOCAB,
    }.items():
        assert config[key] == value, key
    keys = set(load_file(f"{exported['official']}/model.safetensors"))
    layer = "model.layers.1."
    assert {
        layer + k
        for k in (
            "token_mixer.q_proj.weight",
            "token_mixer.k_gate.weight",
            "token_mixer.v_proj.weight",
            "token_mixer.g_proj.weight",
            "token_mixer.g_proj.bias",
            "token_mixer.out_proj.weight",
            "token_mixer.aug_balance",
            "token_mixer.conv1d.weight",
            "channel_mixer.l1.weight",
            "channel_mixer.l2.weight",
            "channel_mixer.l3.weight",
        )
    } <= keys
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= keys
    assert not any("norm" in key for key in keys), "simplermsnorm has no parameters"
    tied = set(load_file(f"{exported['metala']}/model.safetensors"))
    assert "lm_head.weight" not in tied and "model.layers.0.token_norm.weight" in tied


@pytest.mark.parametrize("stack", ["metala", "hybrid"])
def test_hf_greedy_generation_equals_ours_with_left_padding(checkpoints, exported, stack, single_rank):
    from transformers import AutoTokenizer

    from neox_metala.generate import generate_tokens
    from neox_metala.training.checkpoint_files import find_step_dir, load_single_rank_model

    ours, _ = load_single_rank_model(find_step_dir(str(checkpoints[stack][0])))
    tokenizer = AutoTokenizer.from_pretrained(exported[stack])
    prompts = ["The quick brown fox jumps", "Hi"]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    assert tokenizer.padding_side == "left" and batch["attention_mask"][1, 0] == 0
    hf = load_hf(exported[stack])
    generated = hf.generate(**batch, do_sample=False, max_new_tokens=8)[:, batch["input_ids"].shape[1] :]
    expected = generate_tokens(
        ours, [tokenizer(p)["input_ids"] for p in prompts], 8, tokenizer.pad_token_id, tokenizer.eos_token_id, VOCAB
    )
    assert generated.tolist() == expected
    alone = hf.generate(**tokenizer(prompts[1:], return_tensors="pt"), do_sample=False, max_new_tokens=8)
    assert alone[0, -8:].tolist() == expected[1], "left padding changed the padded row's generation"
    torch.manual_seed(0)
    sampled = hf.generate(**batch, do_sample=True, top_k=50, max_new_tokens=5)
    assert sampled.shape == (2, batch["input_ids"].shape[1] + 5)
    with pytest.raises(ValueError, match="num_beams=1"):
        hf.generate(**batch, num_beams=2, max_new_tokens=2)


def test_model_built_from_the_spec_loads_the_export_with_official_names(checkpoints, exported):
    """Official key names and config fields: a model written from spec §5 (official_layout.py) loads the
    folder strictly and computes our logits."""
    official = OfficialLayoutMetaLA.from_folder(exported["official"])  # float64
    hf = load_hf(exported["official"]).double()
    with torch.no_grad():
        expected = official(probe_tokens())
        got = hf_logits(hf, probe_tokens())
    assert rel_err(got, expected) <= 1e-6  # float64 but for the block norms (float32, as the official model)
    assert rel_err(expected.float(), checkpoints["official"][1]) <= TOLERANCE  # and our training-side float32
