import os

# Before torch/deepspeed import: CPU accelerator for DeepSpeed without a GPU, and quiet, single-threaded
# workers so that multi-process gloo tests do not oversubscribe the two CI cores.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
elif os.environ.get("NEOX_METALA_FAST_AUTOTUNE") == "1":
    # Correctness runs on a fresh GPU machine: every Triton autotuner (fla's kernels) keeps only its lightest
    # config, so each kernel compiles once instead of 8-16 times. Never for benchmarks: the choice is not tuned.
    import triton.runtime.autotuner as _autotuner

    _original_init = _autotuner.Autotuner.__init__

    def _one_config_init(self, fn, arg_names, configs, *args, **kwargs):
        lightest = min(configs, key=lambda c: (c.num_stages, c.num_warps)) if configs else None
        _original_init(self, fn, arg_names, [lightest] if lightest else configs, *args, **kwargs)

    _autotuner.Autotuner.__init__ = _one_config_init


# The longest files (half a minute to several minutes each on 2 CI cores), longest first. scripts/test.sh gives
# each pytest worker a whole file (--dist loadfile) in collection order (--no-loadscope-reorder): starting these
# first and leaving the short files to fill in at the end keeps both workers busy until the last minute. The other
# multi-process files follow them.
SLOWEST_FILES = [
    "training/test_fault_tolerance.py",
    "training/test_embedded_default.py",
    "training/test_exit.py",
    "export/test_evaluate.py",
    "training/test_integrity.py",
    "training/test_runtime.py",
    "ops/test_core_op.py",
]


def _file(item) -> str:
    return item.nodeid.split("::")[0].removeprefix("tests/")


def pytest_collection_modifyitems(config, items):
    multiproc_files = {_file(item) for item in items if "multiproc" in item.keywords}

    def run_order(item) -> tuple[int, int]:
        path = _file(item)
        if path in SLOWEST_FILES:
            return 0, SLOWEST_FILES.index(path)
        return (1 if path in multiproc_files else 2), 0

    items.sort(key=run_order)  # stable: each file's tests stay together and in their order
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


import sys  # noqa: E402

# tests/dist_helpers.py is imported by the multi-process tests (and by their spawned workers).
sys.path.insert(0, os.path.dirname(__file__))

from config_fixtures import tiny_yaml, write_yaml  # noqa: E402, F401  (fixtures for every test folder)


@pytest.fixture(scope="session")
def single_rank():
    """A 1-process gloo group and model-parallel state (TP=1) for single-rank layer tests."""
    from dist_helpers import free_port

    os.environ.setdefault("MASTER_PORT", str(free_port()))
    from neox_metala import parallel

    return parallel.initialize(tensor_parallel=1, pipeline_parallel=1, backend="gloo")


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """The bundled sample corpus, tokenized once per test session into a temporary folder."""
    from neox_metala.data_prep.sample import prepare_sample

    return prepare_sample(tmp_path_factory.mktemp("sample_tokenized"))
