"""Where the Triton kernel tests run: natively on a CUDA GPU, or on the CPU through Triton's interpreter
(TRITON_INTERPRET=1 set before the run). They skip without triton, and on a CPU without the interpreter (the
project's CPU suite)."""

import importlib.util
import os

import pytest
import torch

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
DEVICE = "cuda" if torch.cuda.is_available() and not INTERPRETED else "cpu"
MARKS = [
    pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton"),
    pytest.mark.skipif(DEVICE == "cpu" and not INTERPRETED, reason="needs a CUDA GPU or TRITON_INTERPRET=1"),
]
