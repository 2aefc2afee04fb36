"""Checkpoints in GPT-NeoX's layout (`SAVE/global_stepN/…`, `SAVE/latest`), written so a crash never leaves a
checkpoint that looks complete but is not.

Save: every rank writes its DeepSpeed files (per layer, per TP rank) and its own RNG state; all ranks flush to
disk; only then does rank 0 write `global_stepN/complete.json` (the file list with sizes) and replace
`latest` by an atomic rename. A step folder without `complete.json` is ignored on load.
Load: `latest` if it names a complete step, else the newest complete step before it (with a warning); a
`load` folder that has checkpoints but none complete is an error, never a silent fresh start.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import time

import numpy as np
import torch
import torch.distributed as dist

COMPLETE_MARKER = "complete.json"
LATEST = "latest"
CONFIG_FILE = "neox_config.yml"
STEP_DIR = re.compile(r"^global_step(\d+)$")
SAVE_PAUSE_TEST_HOOK = "NEOX_METALA_TEST_PAUSE_SAVE_ITERATIONS"  # test hook: "12" holds step 12's save 60 s
logger = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    pass


def step_tag(iteration: int) -> str:
    return f"global_step{iteration}"


def _write_atomically(path: str, text: str) -> None:
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save(engine, save_dir: str, iteration: int, client_state: dict, config_yaml: str,
         keep_last: int | None = None) -> str:
    """Write global_step{iteration} on every rank; returns its path once it is complete everywhere."""
    tag = step_tag(iteration)
    step_dir = os.path.join(save_dir, tag)
    rank = dist.get_rank()
    engine.save_checkpoint(save_dir, tag=tag, client_state=client_state, save_latest=False)
    _pause_for_test(iteration)
    os.makedirs(step_dir, exist_ok=True)  # ranks that hold no DeepSpeed file still write their RNG state
    torch.save(rng_state(), os.path.join(step_dir, f"rng_state_rank{rank:05d}.pt"))
    dist.barrier()
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        os.sync()  # one flush per node covers every rank's files on it
    dist.barrier()
    if rank == 0:
        _write_atomically(os.path.join(step_dir, CONFIG_FILE), config_yaml)
        files = {name: os.path.getsize(os.path.join(step_dir, name)) for name in sorted(os.listdir(step_dir))}
        marker = {"iteration": iteration, "world_size": dist.get_world_size(), "time": time.time(), "files": files}
        _write_atomically(os.path.join(step_dir, COMPLETE_MARKER), json.dumps(marker, indent=1))
        _write_atomically(os.path.join(save_dir, LATEST), tag)
        if keep_last:
            prune(save_dir, keep_last)
    dist.barrier()
    return step_dir


def _pause_for_test(iteration: int) -> None:
    """Test hook: hold the listed steps' saves after DeepSpeed's files, before the RNG state and the marker, so that
    a test can kill the job there: a folder that holds the weights but must not be resumed from (its RNG state is
    missing: a resume from it would draw other dropout masks). Inert unless the variable is set."""
    if str(iteration) in os.environ.get(SAVE_PAUSE_TEST_HOOK, "").split(","):
        logger.warning("%s: holding the save of iteration %d for 60 s", SAVE_PAUSE_TEST_HOOK, iteration)
        time.sleep(60)


def step_dirs(directory: str) -> list[tuple[int, str]]:
    """(iteration, name) of every global_stepN folder, oldest first."""
    if not os.path.isdir(directory):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(directory) if (m := STEP_DIR.match(name))]
    return sorted(found)


def incompleteness(step_dir: str) -> str | None:
    """Why a step folder is not a usable checkpoint, or None if it is."""
    marker_path = os.path.join(step_dir, COMPLETE_MARKER)
    if not os.path.isdir(step_dir):
        return "the folder does not exist"
    if not os.path.exists(marker_path):
        return f"it has no {COMPLETE_MARKER} (its save did not finish)"
    with open(marker_path) as f:
        files = json.load(f)["files"]
    for name, size in files.items():
        path = os.path.join(step_dir, name)
        if not os.path.exists(path) or os.path.getsize(path) != size:
            return f"{name} is missing or has the wrong size"
    return None


def prune(save_dir: str, keep_last: int) -> None:
    """Remove all but the newest `keep_last` complete checkpoints (and unfinished folders older than them)."""
    complete = [name for _, name in step_dirs(save_dir) if incompleteness(os.path.join(save_dir, name)) is None]
    keep = set(complete[-keep_last:])
    oldest_kept = min((int(STEP_DIR.match(n).group(1)) for n in keep), default=0)
    for iteration, name in step_dirs(save_dir):
        if name not in keep and iteration < oldest_kept:
            shutil.rmtree(os.path.join(save_dir, name), ignore_errors=True)


def find_resume_tag(load_dir: str) -> str | None:
    """The step to resume from, None when `load_dir` holds no checkpoint at all; raises if none is usable."""
    steps = step_dirs(load_dir)
    latest_path = os.path.join(load_dir, LATEST)
    latest = open(latest_path).read().strip() if os.path.exists(latest_path) else None
    if not steps and latest is None:
        return None
    if latest is not None:
        reason = incompleteness(os.path.join(load_dir, latest))
        if reason is None:
            return latest
        logger.warning("checkpoint %s named by %s is unusable: %s", latest, latest_path, reason)
    latest_iteration = int(STEP_DIR.match(latest).group(1)) if latest and STEP_DIR.match(latest) else None
    for iteration, name in reversed(steps):
        if latest_iteration is not None and iteration > latest_iteration:
            continue
        if incompleteness(os.path.join(load_dir, name)) is None:
            logger.warning("resuming from %s, the newest complete checkpoint in %s", name, load_dir)
            return name
    raise CheckpointError(f"{load_dir} has checkpoint folders ({', '.join(n for _, n in steps)}) but none is "
                          f"complete; point `load` at a folder with a complete checkpoint, or remove them to "
                          f"start from scratch")


# Keys that fix the shapes (and TP shards) of the saved tensors: a checkpoint only loads into the same model.
SHAPE_KEYS = ("num_layers", "hidden_size", "num_attention_heads", "intermediate_size", "attention_config",
              "no_weight_tying", "norm", "model_parallel_size", "metala_conv_kernel_size",
              "metala_self_augmentation", "metala_short_conv")


def check_same_model(load_dir: str, tag: str, config: dict, source_of) -> None:
    """Refuse a checkpoint written for another model shape, naming the first differing key and both values."""
    path = os.path.join(load_dir, tag, CONFIG_FILE)
    if not os.path.exists(path):
        return
    import yaml

    with open(path) as f:
        saved = yaml.safe_load(f) or {}
    for key in SHAPE_KEYS:
        if key in saved and saved[key] != config.get(key):
            raise CheckpointError(
                f"{os.path.join(load_dir, tag)} was written for {key} {saved[key]!r} but this run has "
                f"{config.get(key)!r} (from {source_of(key) or 'the defaults'}); point `load` at a checkpoint of "
                f"this model, or at an empty folder to start from scratch")


def load(engine, load_dir: str, tag: str) -> dict:
    """Restore model, optimizer, LR schedule (DeepSpeed) and this rank's RNG; returns the client state."""
    path, client_state = engine.load_checkpoint(load_dir, tag=tag, load_optimizer_states=True,
                                                load_lr_scheduler_states=True)
    if path is None:
        raise CheckpointError(f"DeepSpeed could not load {os.path.join(load_dir, tag)}")
    rng_path = os.path.join(load_dir, tag, f"rng_state_rank{dist.get_rank():05d}.pt")
    if os.path.exists(rng_path):
        set_rng_state(torch.load(rng_path, weights_only=False))
    else:
        logger.warning("%s not found (different world size?): random streams restart from the seed", rng_path)
    return client_state
