"""Every config key does something: each section field is read somewhere outside `neox_metala/config/`.

A key that validates but is read nowhere silently trains another model than the file says (as `pos_emb` once
did). Keys the config itself folds into another value name that value here, and it must be read instead.
"""

import re
from pathlib import Path

import pytest
import torch

from neox_metala.config import SECTIONS, layer_types, load_config
from neox_metala.layers.attention import ParallelSelfAttention
from neox_metala.model import gpt
from neox_metala.training.engine import block_settings

PACKAGE = Path(__file__).resolve().parents[2] / "neox_metala"
# key -> what carries it out of the config package (a property, a function or another key)
CARRIED_BY = {
    "layernorm_epsilon": "norm_epsilon",
    "rms_norm_epsilon": "norm_epsilon",
    "attention_config": "layer_types",
    "bf16": "precision",
    "reset_position_ids": "reset_attention_mask",  # only valid with it, and then implied (config/model.py)
    "eval_tasks_include_path": "eval_task_manager",
    "eval_tasks_limit": "task_limit",
}


def _sources_outside_config() -> str:
    return "\n".join(
        path.read_text() for path in PACKAGE.rglob("*.py") if "config" not in path.relative_to(PACKAGE).parts
    )


def test_every_config_key_is_read_outside_the_config_package():
    code = _sources_outside_config()
    unread = []
    for section_name, section in SECTIONS.items():
        for key in section.field_names():
            # metala_* keys reach the layers and kernels as fields of ops.MetaLAOptions (config/metala.py)
            name = CARRIED_BY.get(key, key.removeprefix("metala_"))
            if not re.search(rf"\.{name}\b|\b{name}\(", code):
                unread.append(f"{section_name}.{key}")
    assert not unread, f"config keys read nowhere outside neox_metala/config/: {unread}"


def test_block_settings_defaults_are_the_configs(tiny_yaml):
    """BlockSettings' defaults (what layer tests and benchmarks build) must not describe another model."""
    import dataclasses

    from neox_metala.layers.settings import BlockSettings

    args = load_config([tiny_yaml])
    args.model.norm, args.model.rotary_pct = "layernorm", 1.0  # the fixture's choices back to the defaults
    from_config = block_settings(args)
    fields = ("hidden_size", "num_attention_heads", "num_layers")
    default = BlockSettings(**{name: getattr(from_config, name) for name in fields})
    assert dataclasses.replace(from_config, intermediate_size=None) == default


def _attention_layer(write_yaml, tiny_yaml, extra: str) -> ParallelSelfAttention:
    args = load_config([tiny_yaml, write_yaml("extra.yml", extra)]).resolve(1)
    specs = gpt.layer_specs(block_settings(args), layer_types(args), 128, tied=True)
    model = gpt.SequentialModel(specs)
    return next(m for m in model.modules() if isinstance(m, ParallelSelfAttention))


def test_pos_emb_none_gives_attention_layers_without_rope(single_rank, write_yaml, tiny_yaml):
    # the tiny fixture is a hybrid stack and says pos_emb: rotary; the later file cannot override, so rewrite it
    Path(tiny_yaml).write_text(Path(tiny_yaml).read_text().replace("pos_emb: rotary\n", ""))
    assert _attention_layer(write_yaml, tiny_yaml, "pos_emb: none\n").rotary is None
    assert _attention_layer(write_yaml, tiny_yaml, "pos_emb: rotary\n").rotary is not None
    assert _attention_layer(write_yaml, tiny_yaml, "rotary_pct: 0.5\n").rotary.rotary_dim == 8  # default rotary


@pytest.mark.parametrize("value", ["learned", "alibi", "sinusoidal"])
def test_neox_position_encodings_we_do_not_implement_are_refused(write_yaml, tiny_yaml, value):
    from neox_metala.config import ConfigError

    Path(tiny_yaml).write_text(Path(tiny_yaml).read_text().replace("pos_emb: rotary\n", f"pos_emb: {value}\n"))
    with pytest.raises(
        ConfigError,
        match=rf"{tiny_yaml}: pos_emb: '{value}' is a GPT-NeoX position encoding .* "
        r"supported: 'rotary', 'none'",
    ):
        load_config([tiny_yaml])


def test_attention_dropout_drops_attention_probabilities_in_training_only(single_rank, write_yaml, tiny_yaml):
    layer = _attention_layer(write_yaml, tiny_yaml, "attention_dropout: 0.5\n")
    hidden = torch.randn(12, 2, 64)
    layer.eval()
    with torch.no_grad():
        assert torch.equal(layer(hidden), layer(hidden))
        layer.train()
        torch.manual_seed(0)
        first = layer(hidden)
        assert not torch.allclose(first, layer(hidden))


def test_max_position_embeddings_is_the_exported_context_length(write_yaml, tiny_yaml):
    from types import SimpleNamespace

    from neox_metala.export.convert import hf_config

    args = load_config([tiny_yaml, write_yaml("extra.yml", "max_position_embeddings: 4096\n")]).resolve(1)
    tokenizer = SimpleNamespace(eod_id=0, pad_id=1)
    assert hf_config(args, 128, tokenizer, torch.float32)["max_position_embeddings"] == 4096
