"""YAML fixtures for every test folder (registered in conftest.py): real files on disk, as users write them."""

import textwrap

import pytest

# A complete, valid small config in NeoX style (dashes and underscores mixed, as NeoX files are).
TINY = """
num-layers: 4
hidden_size: 64
num_attention_heads: 4
seq_length: 128
attention_config: [[["metala", "metala", "attention"], 1], [["metala"], 1]]
norm: rmsnorm
pos_emb: rotary
optimizer: {type: AdamW, params: {lr: 6.0e-4, betas: [0.9, 0.95], eps: 1.0e-8}}
train_micro_batch_size_per_gpu: 2
gradient_accumulation_steps: 2
train-iters: 100
"""


@pytest.fixture
def write_yaml(tmp_path):
    """write_yaml("name.yml", text) -> the file's path (str), under a fresh tmp directory."""

    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


@pytest.fixture
def tiny_yaml(write_yaml):
    return write_yaml("tiny.yml", TINY)
