"""A checkpoint of any parallel layout read as full, unsharded tensors per parameter: the layout-neutral form that
a layout change goes through (`layout_change.py` writes it into an engine of another layout).

What DeepSpeed's files of a step folder hold, and where (TP = tensor-parallel, DP = data-parallel size):

    weights               mp_rank_{tp}_model_states.pt["module"] (plain engine) or layer_{i}-model_{tp}-...pt
                          (pipeline engine); merged over TP by `training.checkpoint_files.read_full_state`
    fp32 master weights,  [bf16_]zero_pp_rank_{dp}_mp_rank_{mp}_optim_states.pt, one per (DP rank, model-parallel
    AdamW moments, step   rank mp = stage * TP + tp): per param group one flat fp32 partition, its AdamW state
                          (`exp_avg`, `exp_avg_sq` over the same flat, `step`), and `param_slice_mappings`: each
                          parameter's fragment (start, numel) in the partition. A parameter's fragments over the DP
                          ranks, in order, are the parameter flattened (DeepSpeed's ds_to_universal reads them so).
    LR schedule, counters mp_rank_00_model_states.pt (`lr_scheduler`, `global_steps`, ...; our `train_state`)
    RNG                   rng_state_rank{r}.pt, one per global rank (training/checkpoint.py)

TP shards are merged with the layout that the parameters declare (`partition_dim`, `fused_part_sizes`) on a
meta-device single-rank model, as `read_full_state` does for the weights. Optimizer files are memory-mapped and
read one parameter at a time, so converting a large model does not hold all of its optimizer state at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from ..model.reshard import merge_tp_shards
from .checkpoint_files import (
    CheckpointFormatError,
    canonical_name,
    checkpoint_config,
    full_parameter_layouts,
    model_description,
    read_full_state,
)

OPTIMIZER_FILE = re.compile(r"^(bf16_)?zero_pp_rank_(\d+)_mp_rank_(\d+)_optim_states\.pt$")
MASTER = "fp32"  # the key of the fp32 master weights beside the AdamW moments
MOMENTS = ("exp_avg", "exp_avg_sq")
EMBEDDING = "layers.0.word_embeddings.weight"


@dataclass(frozen=True)
class Layout:
    """How a run's state is split: the things a DeepSpeed checkpoint only loads back into unchanged."""

    tensor_parallel: int
    pipe_parallel_size: int  # 0: the plain engine; >= 1: pipeline engine stages
    data_parallel: int
    zero_stage: int
    precision: str

    @property
    def pipeline_stages(self) -> int:
        return max(self.pipe_parallel_size, 1)

    def rank(self, stage: int, data: int, tensor: int) -> int:
        """Global rank (parallel/state.py: tensor-parallel innermost, then data-parallel, pipeline outermost)."""
        return (stage * self.data_parallel + data) * self.tensor_parallel + tensor

    def __str__(self) -> str:
        return (
            f"TP={self.tensor_parallel} PP={self.pipe_parallel_size} DP={self.data_parallel} "
            f"(ZeRO stage {self.zero_stage}, {self.precision})"
        )


def layout_of(args) -> Layout:
    """The layout of a resolved config (NeoXArgs)."""
    return Layout(
        args.parallel.model_parallel_size,
        args.parallel.pipe_parallel_size,
        args.derived.data_parallel_size,
        args.optimizer.zero_stage,
        args.training.precision,
    )


def resolved_checkpoint_config(step_dir: str):
    """The config a checkpoint was saved with, resolved for the world size that saved it (its complete.json)."""
    from .checkpoint import read_marker

    return checkpoint_config(step_dir).resolve(read_marker(step_dir)["world_size"])


def checkpoint_layout(step_dir: str) -> Layout:
    return layout_of(resolved_checkpoint_config(step_dir))


class NeutralCheckpoint:
    """One complete step folder of any layout; `weight(name)`, `optimizer_tensor(name, key)` give full tensors
    under single-rank names (`layers.{index}.…`, see `training.checkpoint_files`)."""

    def __init__(self, step_dir: str):
        self.step_dir = step_dir
        self.args = resolved_checkpoint_config(step_dir)
        self.layout = layout_of(self.args)
        settings, layer_types, tied = model_description(self.args)
        self.weights = read_full_state(step_dir, settings, layer_types, tied)
        self.padded_vocab = self.weights[EMBEDDING].shape[0]
        expected = full_parameter_layouts(settings, layer_types, self.padded_vocab, tied)
        self.tp_layouts = {name: layout for name, (_, layout) in expected.items()}
        self.shapes = {name: shape for name, (shape, _) in expected.items()}
        self.engine_state = torch.load(
            os.path.join(step_dir, "mp_rank_00_model_states.pt"), map_location="cpu", weights_only=False, mmap=True
        )
        self._optimizer_files: dict[str, dict] = {}
        self._index: dict[str, dict[int, list]] | None = None  # read when first needed: finetune does not

    @property
    def _fragments(self) -> dict[str, dict[int, list]]:
        if self._index is None:
            self._index = self._index_optimizer_files()
        return self._index

    @property
    def iteration(self) -> int:
        return self.engine_state["train_state"]["iteration"]

    def weight(self, name: str) -> torch.Tensor:
        return self.weights[name]

    def rng_state_path(self, rank: int) -> str:
        return os.path.join(self.step_dir, f"rng_state_rank{rank:05d}.pt")

    # ---- optimizer state ------------------------------------------------------------------------------------

    def _optimizer_state(self, path: str) -> dict:
        if path not in self._optimizer_files:
            self._optimizer_files[path] = torch.load(path, map_location="cpu", weights_only=False, mmap=True)[
                "optimizer_state_dict"
            ]
        return self._optimizer_files[path]

    def _index_optimizer_files(self) -> dict[str, dict[int, list]]:
        """{name: {tp rank: [(file, group, start, numel) in DP order]}} from every optimizer file's slice map."""
        files = sorted(
            (int(m.group(3)), int(m.group(2)), name)
            for name in os.listdir(self.step_dir)
            if (m := OPTIMIZER_FILE.match(name))
        )
        if not files:
            raise CheckpointFormatError(
                f"{self.step_dir} has no zero_pp_rank_*_optim_states.pt files (a ZeRO stage 0 checkpoint?); changing "
                f"the layout needs the partitioned optimizer state of zero_optimization stage 1 or 2. Resume it in "
                f"its own layout, or load only its weights in another layout with finetune or no_load_optim: true"
            )
        tp = self.layout.tensor_parallel
        fragments: dict[str, dict[int, list]] = {}
        for mp_rank, _dp_rank, file_name in files:  # DP ranks in order within each model-parallel rank
            path = os.path.join(self.step_dir, file_name)
            for group, mapping in enumerate(self._optimizer_state(path)["param_slice_mappings"]):
                for engine_name, address in mapping.items():
                    pieces = fragments.setdefault(canonical_name(engine_name), {}).setdefault(mp_rank % tp, [])
                    pieces.append((path, group, address.start, address.numel))
        unknown = sorted(set(fragments) - set(self.shapes))
        missing = sorted(set(self.shapes) - set(fragments))
        if unknown or missing:
            raise CheckpointFormatError(
                f"{self.step_dir}: the optimizer files do not match the model of its "
                f"neox_config.yml: missing {missing[:4]}, unexpected {unknown[:4]}"
            )
        return fragments

    def _tp_local(self, name: str, tp_rank: int, key: str) -> torch.Tensor:
        """One TP rank's copy of `name` in the optimizer files (flattened), from its fragments on every DP rank.
        A tied embedding held by the first and the last pipeline stage appears twice: the copies are equal (their
        gradients are summed over the tied group), so the first stage's is read."""
        pieces = []
        numel = self.shapes[name].numel() // (
            self.layout.tensor_parallel if self.tp_layouts[name][0] is not None else 1
        )
        for path, group, start, count in self._fragments[name][tp_rank]:
            if sum(piece.numel() for piece in pieces) >= numel:
                break
            state = self._optimizer_state(path)
            if key == MASTER:
                flat = state["single_partition_of_fp32_groups"][group]
            else:
                base = state["base_optimizer_state"]
                flat = base["state"][base["param_groups"][group]["params"][0]][key]
            pieces.append(flat.narrow(0, start, count))
        local = torch.cat(pieces)
        if local.numel() != numel:
            raise CheckpointFormatError(
                f"{self.step_dir}: {name} ({key}) has {local.numel()} elements in the "
                f"optimizer files of TP rank {tp_rank}, expected {numel}"
            )
        return local

    def optimizer_tensor(self, name: str, key: str) -> torch.Tensor:
        """The full fp32 master weight (`MASTER`) or AdamW moment (`MOMENTS`) of a parameter."""
        partition_dim, fused = self.tp_layouts[name]
        tp = self.layout.tensor_parallel if partition_dim is not None else 1
        local_shape = list(self.shapes[name])
        if partition_dim is not None:
            local_shape[partition_dim] //= self.layout.tensor_parallel
        shards = [self._tp_local(name, rank, key).view(local_shape) for rank in range(tp)]
        return merge_tp_shards(shards, partition_dim, fused)

    def _first_optimizer_file(self) -> str:
        return next(iter(next(iter(self._fragments.values())).values()))[0][0]

    def optimizer_step(self) -> torch.Tensor:
        """AdamW's step count (the same tensor in every group and file: every update steps every parameter)."""
        base = self._optimizer_state(self._first_optimizer_file())["base_optimizer_state"]
        return base["state"][base["param_groups"][0]["params"][0]]["step"].clone()
