import os
import sys
import tempfile

# Everything these tests load is local: never let transformers or the hub try the network. trust_remote_code
# copies model code into HF_MODULES_CACHE (read when transformers is imported): a private one per session.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="neox_metala_hf_modules_"))
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # lm-eval's local json tasks: no hub look-ups
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="neox_metala_hf_datasets_"))
sys.path.insert(0, os.path.dirname(__file__))  # checkpoint_helpers, also for spawned workers


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """{name: (checkpoint dir, reference logits of the probe batch or None)}; 'hybrid-tp2' and 'hybrid-pp2' hold
    the very same full weights as 'hybrid' (initialisation and noise are drawn per full tensor)."""
    from checkpoint_helpers import STACKS, flat_config, save_worker
    from dist_helpers import run_workers

    root = tmp_path_factory.mktemp("checkpoints")
    single = {name: flat_config(types, root / name) for name, types in STACKS.items()}
    single["official"] = flat_config(STACKS["metala"], root / "official", norm="simple_rmsnorm", no_weight_tying=True)
    logits = run_workers(save_worker, 1, root / "r1", runs=[(values, 5) for values in single.values()])
    layouts = {
        "hybrid-tp2": flat_config(STACKS["hybrid"], root / "hybrid-tp2", tp=2),
        "hybrid-pp2": flat_config(STACKS["hybrid"], root / "hybrid-pp2", pp=2),
    }
    run_workers(save_worker, 2, root / "r2", runs=[(values, 5) for values in layouts.values()])
    found = {name: (root / name, reference) for name, reference in zip(single, logits[0])}
    found.update({name: (root / name, None) for name in layouts})
    return found


@pytest.fixture(scope="session")
def exported(checkpoints, tmp_path_factory):
    """{name: HF folder exported from that checkpoint}."""
    from neox_metala.export.hf import export_hf

    root = tmp_path_factory.mktemp("hf")
    return {name: export_hf(str(path), str(root / f"hf-{name}")) for name, (path, _) in checkpoints.items()}
