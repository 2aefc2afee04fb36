"""Checkpoints in GPT-NeoX's layout (`SAVE/global_stepN/…`, `SAVE/latest`), written so a crash never leaves a
checkpoint that looks complete but is not.

Save: an earlier folder of the same step (a run resumed from before it) is removed first, so that neither its
marker nor its files join the new save; every rank writes its DeepSpeed files (per layer, per TP rank) and its own
RNG state; all ranks flush to disk and hash a share of the step's files (sha256); only then does rank 0 write
`global_stepN/complete.json` (every file's size and digest, the tokenizer, whether any update was applied since the
previous save) and replace `latest` by an atomic rename. Weights that are not finite are never saved as a complete step.
Load: `latest` if it names a complete step, else the newest complete step before it (with a warning); a
`load` folder that has checkpoints but none complete is an error, never a silent fresh start. The chosen step's
files must match their digests and its weights and optimizer state must be finite; a step that fails is named
and the previous complete one is loaded instead.
Pruning (`keep_last_n_checkpoints`) counts only steps that followed an applied update, so a run whose every step
was skipped never deletes the good checkpoints before it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import re
import shutil
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.distributed as dist

from ..config import SHAPE_KEYS, ConfigError, expand_attention_config

COMPLETE_MARKER = "complete.json"
LATEST = "latest"
CONFIG_FILE = "neox_config.yml"
STEP_DIR = re.compile(r"^global_step(\d+)$")
logger = logging.getLogger(__name__)
# Called with the iteration between DeepSpeed's files and the RNG state and marker of a save, when set: the tests
# stop a save there (tests/training/hooked_train.py).
after_engine_files: Callable[[int], None] | None = None


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


def save(
    engine,
    save_dir: str,
    iteration: int,
    client_state: dict,
    config_yaml: str,
    keep_last: int | None = None,
    marker: dict | None = None,
) -> str:
    """Write global_step{iteration} on every rank; returns its path once it is complete everywhere. `marker`
    adds entries to complete.json (`tokenizer`; `only_skipped_updates` keeps the step out of pruning counts)."""
    tag = step_tag(iteration)
    step_dir = os.path.join(save_dir, tag)
    rank = dist.get_rank()
    bad = non_finite_tensors(engine, weights_only=True)
    if bad:
        raise CheckpointError(
            f"refusing to save iteration {iteration} to {save_dir}: non-finite weights in "
            f"{', '.join(bad[:5])}; the last complete checkpoint there stays the newest"
        )
    if rank == 0 and os.path.isdir(step_dir):
        # an earlier save of this step (a job killed after its marker but before `latest`, or a run resumed from an
        # earlier step on purpose): its marker must not vouch for files about to be overwritten (a kill during this
        # save would leave them looking complete), and its files, maybe of another layout, must not join this save's
        shutil.rmtree(step_dir)
    dist.barrier()
    engine.save_checkpoint(save_dir, tag=tag, client_state=client_state, save_latest=False)
    if after_engine_files is not None:
        after_engine_files(iteration)
    os.makedirs(step_dir, exist_ok=True)  # ranks that hold no DeepSpeed file still write their RNG state
    torch.save(rng_state(), os.path.join(step_dir, f"rng_state_rank{rank:05d}.pt"))
    if rank == 0:
        _write_atomically(os.path.join(step_dir, CONFIG_FILE), config_yaml)
    dist.barrier()
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        os.sync()  # one flush per node covers every rank's files on it
    dist.barrier()
    files = _gather_file_records(step_dir)
    if rank == 0:
        record = {
            "iteration": iteration,
            "world_size": dist.get_world_size(),
            "time": time.time(),
            "files": files,
            **(marker or {}),
        }
        _write_atomically(os.path.join(step_dir, COMPLETE_MARKER), json.dumps(record, indent=1))
        _write_atomically(os.path.join(save_dir, LATEST), tag)
        if keep_last:
            prune(save_dir, keep_last)
    dist.barrier()
    return step_dir


def _gather_file_records(step_dir: str) -> dict:
    """{name: {"bytes", "sha256"}} of every file in the step folder, each rank hashing a share of them."""
    names = sorted(os.listdir(step_dir))
    mine = {
        name: {
            "bytes": os.path.getsize(os.path.join(step_dir, name)),
            "sha256": file_digest(os.path.join(step_dir, name)),
        }
        for name in names[dist.get_rank() :: dist.get_world_size()]
    }
    shares = [None] * dist.get_world_size()
    dist.all_gather_object(shares, mine)
    return {name: record for share in shares for name, record in sorted(share.items())}


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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
    for name, record in read_marker(step_dir)["files"].items():
        path = os.path.join(step_dir, name)
        size = record["bytes"] if isinstance(record, dict) else record  # markers before digests held sizes only
        if not os.path.exists(path) or os.path.getsize(path) != size:
            return f"{name} is missing or has the wrong size"
    return None


def read_marker(step_dir: str) -> dict:
    with open(os.path.join(step_dir, COMPLETE_MARKER)) as f:
        return json.load(f)


def corrupted_files(step_dir: str) -> list[str]:
    """Collective: the files of a complete step whose content differs from the digest recorded at its save
    (each rank hashes a share); [] for a step saved before digests were recorded."""
    files = read_marker(step_dir)["files"]
    names = [name for name, record in sorted(files.items()) if isinstance(record, dict)]
    mine = [
        name
        for name in names[dist.get_rank() :: dist.get_world_size()]
        if file_digest(os.path.join(step_dir, name)) != files[name]["sha256"]
    ]
    shares = [None] * dist.get_world_size()
    dist.all_gather_object(shares, mine)
    return sorted(name for share in shares for name in share)


def non_finite_tensors(engine, weights_only: bool = False) -> list[str]:
    """Collective: names of this run's weights (and optimizer state: moments, fp32 master weights) holding a NaN
    or an infinity, on any rank."""
    mine = [name for name, p in engine.module.named_parameters() if not torch.isfinite(p.detach()).all()]
    if not weights_only:
        optimizer = engine.optimizer
        while hasattr(optimizer, "optimizer"):  # DeepSpeed's wrappers hold the torch optimizer
            optimizer = optimizer.optimizer
        for group_index, group in enumerate(optimizer.param_groups):
            for param_index, param in enumerate(group["params"]):
                state = optimizer.state.get(param, {})
                tensors = {"master weight": param, **{k: v for k, v in state.items() if torch.is_tensor(v)}}
                mine += [
                    f"optimizer group {group_index} param {param_index} {name}"
                    for name, value in tensors.items()
                    if value.is_floating_point() and not torch.isfinite(value.detach()).all()
                ]
    shares = [None] * dist.get_world_size()
    dist.all_gather_object(shares, [f"{name} (rank {dist.get_rank()})" for name in mine])
    return [name for share in shares for name in share]


def prune(save_dir: str, keep_last: int) -> None:
    """Remove all but the newest `keep_last` complete checkpoints that followed an applied update, and anything
    older than them. Steps saved after skipped updates only are never counted, so they never push out a good one."""
    complete = [(i, name) for i, name in step_dirs(save_dir) if incompleteness(os.path.join(save_dir, name)) is None]
    good = [
        (i, name) for i, name in complete if not read_marker(os.path.join(save_dir, name)).get("only_skipped_updates")
    ]
    kept = good[-keep_last:] or complete[-keep_last:]
    oldest_kept = min((i for i, _ in kept), default=0)
    for iteration, name in step_dirs(save_dir):
        if iteration < oldest_kept and (iteration, name) not in kept:
            shutil.rmtree(os.path.join(save_dir, name), ignore_errors=True)


def find_resume_tag(load_dir: str) -> str | None:
    """The step to resume from; None when `load_dir` holds no checkpoint at all, or only the unfinished folders of
    a first save that never completed; raises if a completed checkpoint existed and none is usable now."""
    steps = step_dirs(load_dir)
    latest_path = os.path.join(load_dir, LATEST)
    latest = open(latest_path).read().strip() if os.path.exists(latest_path) else None
    if not steps and latest is None:
        return None
    if latest is None and all(incompleteness(os.path.join(load_dir, name)) is not None for _, name in steps):
        # `latest` is written only after a step completes: these folders are a first save that never finished
        # (a job killed in it), not a checkpoint that was lost. Nothing complete exists, so nothing is lost.
        logger.warning(
            "%s holds only unfinished checkpoint folders (%s) and no `latest`: a first save that never "
            "completed; starting from scratch",
            load_dir,
            ", ".join(name for _, name in steps),
        )
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
    raise CheckpointError(
        f"{load_dir} has checkpoint folders ({', '.join(n for _, n in steps)}) but none is "
        f"complete; point `load` at a folder with a complete checkpoint, or remove them to "
        f"start from scratch"
    )


def same_shape_value(key: str, saved, current) -> bool:
    """Whether a shape key's saved value describes the same model as this run's: attention_config is compared
    layer by layer ([[["metala"], 24]] and [[["metala"], 12], [["metala"], 12]] are one stack)."""
    if key == "attention_config" and saved is not None and current is not None:
        try:
            return expand_attention_config(saved) == expand_attention_config(current)
        except ConfigError:  # a saved value this version cannot read: compared as written
            return saved == current
    return saved == current


def check_same_model(load_dir: str, tag: str, config: dict, source_of, tokenizer: dict | None = None) -> None:
    """Refuse a checkpoint written for another model shape (naming the first differing key and both values) or
    with another vocabulary size than this run's tokenizer gives."""
    step_dir = os.path.join(load_dir, tag)
    path = os.path.join(step_dir, CONFIG_FILE)
    if os.path.exists(path):
        import yaml

        with open(path) as f:
            saved = yaml.safe_load(f) or {}
        for key in SHAPE_KEYS:
            if key in saved and not same_shape_value(key, saved[key], config.get(key)):
                raise CheckpointError(
                    f"{step_dir} was written for {key} {saved[key]!r} but this run has {config.get(key)!r} (from "
                    f"{source_of(key) or 'the defaults'}); point `load` at a checkpoint of this model, or at an "
                    f"empty folder to start from scratch"
                )
    saved_tokenizer = (
        read_marker(step_dir).get("tokenizer") if os.path.exists(os.path.join(step_dir, COMPLETE_MARKER)) else None
    )
    if tokenizer is None or saved_tokenizer is None:
        return
    if saved_tokenizer["padded_vocab_size"] != tokenizer["padded_vocab_size"]:
        raise CheckpointError(
            f"{step_dir} was trained with a vocabulary of {saved_tokenizer['vocab_size']} tokens (padded "
            f"{saved_tokenizer['padded_vocab_size']}) but vocab_file {config.get('vocab_file')!r} (from "
            f"{source_of('vocab_file')}) has {tokenizer['vocab_size']} (padded {tokenizer['padded_vocab_size']}); "
            f"use the checkpoint's tokenizer, or an empty `load` folder to start from scratch"
        )
    if saved_tokenizer.get("fingerprint") != tokenizer.get("fingerprint"):
        logger.warning(
            "%s was trained with a different tokenizer file of the same vocabulary size than vocab_file "
            "%s; token ids may mean other tokens",
            step_dir,
            config.get("vocab_file"),
        )


def load_newest_sound(engine, load_dir: str, tag: str, parts: LoadParts | None = None) -> tuple[str, dict]:
    """Collective: load `tag`, or the newest complete step before it, whose files match their digests and whose
    weights and optimizer state are finite; every step refused is logged with the reason (file names)."""
    while tag is not None:
        step_dir = os.path.join(load_dir, tag)
        corrupted = corrupted_files(step_dir)
        if corrupted:
            problem = f"{', '.join(corrupted)} differ from the digests recorded when it was saved"
        else:
            client_state = load(engine, load_dir, tag, parts)
            bad = non_finite_tensors(engine)
            if not bad:
                return tag, client_state
            problem = f"non-finite values after loading it, in {', '.join(bad[:5])}"
        logger.error("checkpoint %s is unusable: %s; trying the previous complete checkpoint", step_dir, problem)
        tag = _previous_complete(load_dir, int(STEP_DIR.match(tag).group(1)))
    raise CheckpointError(
        f"{load_dir}: no complete checkpoint passes the integrity checks (errors above); restore "
        f"the files from a copy, or point `load` at an empty folder to start from scratch"
    )


def _previous_complete(load_dir: str, before: int) -> str | None:
    older = [
        name
        for iteration, name in step_dirs(load_dir)
        if iteration < before and incompleteness(os.path.join(load_dir, name)) is None
    ]
    return older[-1] if older else None


@dataclasses.dataclass(frozen=True)
class LoadParts:
    """What a load restores beyond the weights (GPT-NeoX's finetune / no_load_optim / no_load_rng)."""

    optimizer: bool = True  # AdamW state and the LR schedule (fresh: the master weights are the loaded weights)
    rng: bool = True
    counters: bool = True  # DeepSpeed's step counters; False for a fine-tuning run, which starts at 0

    @classmethod
    def of(cls, checkpoint_config) -> LoadParts:
        finetune = checkpoint_config.finetune
        return cls(
            optimizer=not (finetune or checkpoint_config.no_load_optim),
            rng=not (finetune or checkpoint_config.no_load_rng),
            counters=not finetune,
        )


def load(engine, load_dir: str, tag: str, parts: LoadParts | None = None) -> dict:
    """Restore model, optimizer, LR schedule (DeepSpeed) and this rank's RNG; returns the client state."""
    parts = parts or LoadParts()
    path, client_state = engine.load_checkpoint(
        load_dir,
        tag=tag,
        load_optimizer_states=parts.optimizer,
        load_lr_scheduler_states=parts.optimizer,
        load_module_only=not parts.counters,
    )
    if path is None:
        raise CheckpointError(f"DeepSpeed could not load {os.path.join(load_dir, tag)}")
    if not parts.rng:
        return client_state
    rng_path = os.path.join(load_dir, tag, f"rng_state_rank{dist.get_rank():05d}.pt")
    if os.path.exists(rng_path):
        set_rng_state(torch.load(rng_path, weights_only=False))
    else:
        logger.warning("%s not found (different world size?): random streams restart from the seed", rng_path)
    return client_state
