"""Training-loop keys: length, batch, precision, evaluation cadence, stopping (NeoX's NeoXArgsTraining subset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError, did_you_mean
from .fields import Section, SourceOf, require

Precision = Literal["fp32", "fp16", "bfloat16"]
# Keys DeepSpeed reads from its fp16 / bf16 blocks; NeoX files put loss-scaling settings there.
FP16_KEYS = (
    "enabled",
    "type",
    "auto_cast",
    "loss_scale",
    "initial_scale_power",
    "loss_scale_window",
    "hysteresis",
    "consecutive_hysteresis",
    "min_loss_scale",
)
BF16_KEYS = ("enabled",)
BATCH_KEYS = ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's


@dataclass
class TrainingConfig(Section):
    train_iters: int | None = None
    """Optimizer steps to train for. Required; NeoX default None."""

    train_micro_batch_size_per_gpu: int | None = None
    """Sequences per GPU per forward pass. Give any two of the three batch keys (or this one alone) and the
    rest are derived from the data-parallel size, as NeoX does. NeoX default None."""

    gradient_accumulation_steps: int | None = None
    """Micro-batches accumulated per optimizer step. Derived when not given (1 if underdetermined).
    NeoX default 1."""

    train_batch_size: int | None = None
    """Global batch in sequences = micro batch * accumulation * data-parallel size. NeoX default None."""

    seed: int = 1234
    """Seed for Python, NumPy and PyTorch RNGs. NeoX default 1234."""

    precision: Precision | None = None
    """Training precision. May instead be given NeoX's way, fp16: {enabled: true} or bf16: {enabled: true};
    both forms together must agree. Default "fp32" (NeoX derives it the same way)."""

    fp16: dict | None = None
    """DeepSpeed fp16 block, e.g. {enabled: true, loss_scale: 0, initial_scale_power: 12, hysteresis: 2}.
    NeoX default None."""

    bf16: dict | None = None
    """DeepSpeed bf16 block, {enabled: true}. NeoX default None."""

    checkpoint_activations: bool = False
    """Recompute each layer's activations in the backward pass to save memory. NeoX default False."""

    torch_compile: bool | None = None
    """Compile each layer with torch.compile (regional compilation: norms, residuals, activations and the
    mixer's elementwise steps fused; GEMMs and the MetaLA core kernels unchanged). Default: on when training on
    a GPU, off on CPU (where compilation takes longer than short runs). Not a NeoX key."""

    torch_compile_mode: str | None = None
    """torch.compile's mode for the compiled layers: "default", "reduce-overhead" (CUDA graphs: each layer's kernels
    replayed as one graph, removing the host's per-kernel launch cost; each micro batch's forward starts a new
    CUDA-graph step), "max-autotune" or "max-autotune-no-cudagraphs". Default: "reduce-overhead" for MetaLA models
    on one GPU (one pipeline stage, no tensor or data parallelism) without activation checkpointing (380M on an H200
    at T=2048: our step from 156.5k to 164.1k tokens/s, and with this fork's other defaults 1.042x the plain
    compiled Transformer++, at 18.8 GiB peak; docs/benchmarks.md, session 12), else "default" (a pipeline's
    stages run several forwards before their backwards, and CUDA graphs have not yet been measured with attention
    layers (their RoPE tables are cached from inside the compiled code), next to DeepSpeed's data-parallel
    reductions or tensor-parallel collectives, or with recomputation inside a graph). Not a NeoX key."""

    torch_compile_memory_budget: float | None = None
    """With torch_compile: the share of the activations a compiled layer keeps for backward, between what must be
    kept (0) and what the compiler keeps by default (1.0); below 1 cheap elementwise steps are recomputed in
    backward instead (torch's activation_memory_budget, one setting for the whole process). Default: 1.0, and 0.8
    for MetaLA models with metala_epilogue_kernel: compiled (380M on an H200 at T=2048: 34.4 -> 18.7 GiB and 123k ->
    138k tokens/s, since the epilogue's saved fp32 intermediates cost more bandwidth than their recomputation). Not
    below 1 with MetaLA's own epilogue kernels (the default): they leave no such intermediates, and below 1 the
    partitioner, which weighs recomputation by flops and counts none for custom ops, runs the core's and the
    epilogue's forward again in the backward to meet the budget. Not a NeoX key."""

    kernel_cache_dir: str | None = None
    """Folder for compiled GPU kernels and their autotuning results (Triton, fla, torch.compile), reused by
    every later run; local rank 0 of each node compiles while the node's other ranks wait, and a folder on a
    shared filesystem serves every node. Default: $NEOX_METALA_KERNEL_CACHE, else ~/.cache/neox-metala/kernels
    (TRITON_CACHE_DIR / TORCHINDUCTOR_CACHE_DIR set in the environment win). Fill it ahead of a job with
    `python -m neox_metala.warmup -d configs ...`. Not a NeoX key."""

    eval_interval: int = 1000
    """Run validation every this many iterations. NeoX default 1000."""

    eval_iters: int = 100
    """Validation batches per evaluation. NeoX default 100."""

    exit_interval: int | None = None
    """Save and exit after the iteration that is a multiple of this. NeoX default None."""

    exit_duration_in_mins: float | None = None
    """Save and exit once training has run this many minutes (Megatron's key; not in NeoX). Default None."""

    max_consecutive_nonfinite: int = 5
    """Stop (non-zero exit) after this many consecutive steps skipped for a non-finite loss or gradient;
    0 never stops. Default 5."""

    def check_values(self, source_of: SourceOf) -> None:
        require(self.train_iters is not None, "missing required key 'train_iters'", "train_iters", source_of)
        for key in ("train_iters", "eval_interval", *BATCH_KEYS):
            value = getattr(self, key)
            require(value is None or value > 0, f"{key} must be > 0, got {value}", key, source_of)
        require(
            self.train_micro_batch_size_per_gpu is not None or self.train_batch_size is not None,
            "give train_micro_batch_size_per_gpu (and optionally gradient_accumulation_steps) or train_batch_size",
            "train_micro_batch_size_per_gpu",
            source_of,
        )
        for key in ("eval_iters", "max_consecutive_nonfinite"):
            require(getattr(self, key) >= 0, f"{key} must be >= 0, got {getattr(self, key)}", key, source_of)
        for key in ("exit_interval", "exit_duration_in_mins"):
            value = getattr(self, key)
            require(value is None or value > 0, f"{key} must be > 0, got {value}", key, source_of)
        require(
            self.torch_compile_mode is None or self.torch_compile_mode in COMPILE_MODES,
            f"torch_compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.torch_compile_mode!r}",
            "torch_compile_mode",
            source_of,
        )
        budget = self.torch_compile_memory_budget
        require(
            budget is None or 0.0 < budget <= 1.0,
            f"torch_compile_memory_budget must be in (0, 1], got {budget}",
            "torch_compile_memory_budget",
            source_of,
        )
        _check_block_keys("fp16", self.fp16, FP16_KEYS, source_of)
        _check_block_keys("bf16", self.bf16, BF16_KEYS, source_of)

    def derive(self, source_of: SourceOf) -> None:
        """Reconcile precision with NeoX's fp16/bf16 blocks."""
        # NeoX's older bf16 spelling is fp16: {enabled: true, type: bfloat16}.
        fp16_means = (self.fp16 or {}).get("type", "fp16")
        require(
            fp16_means in ("fp16", "bfloat16"),
            f"fp16.type must be 'fp16' or 'bfloat16', got {fp16_means!r}",
            "fp16",
            source_of,
        )
        enabled = [
            name
            for name, block in ((fp16_means, self.fp16), ("bfloat16", self.bf16))
            if block and block.get("enabled", False)
        ]
        if len(enabled) == 2:
            raise ConfigError("fp16.enabled and bf16.enabled are both true; enable one", source_of("bf16"), "bf16")
        from_blocks = enabled[0] if enabled else None
        if self.precision is None:
            self.precision = from_blocks or "fp32"
            return
        if from_blocks is not None and from_blocks != self.precision:
            block_key = "fp16" if self.fp16 and self.fp16.get("enabled") else "bf16"
            raise ConfigError(
                f"precision is {self.precision!r} but {block_key}.enabled is true (from "
                f"{source_of(block_key)}); make them agree or drop one",
                source_of("precision"),
                "precision",
            )
        for name, block_key in ((fp16_means, "fp16"), ("bfloat16", "bf16")):
            block = getattr(self, block_key)
            if self.precision == name and block is not None and block.get("enabled") is False:
                raise ConfigError(
                    f"precision is {name!r} but {block_key}.enabled is false (from {source_of(block_key)}); "
                    f"make them agree or drop one",
                    source_of("precision"),
                    "precision",
                )


def _check_block_keys(name: str, block: dict | None, allowed: tuple[str, ...], source_of: SourceOf) -> None:
    if block is None:
        return
    for key in block:
        if key not in allowed:
            raise ConfigError(f"{name}: unknown key {key!r}{did_you_mean(str(key), allowed)}", source_of(name), name)
    enabled = block.get("enabled", False)
    require(isinstance(enabled, bool), f"{name}.enabled must be true or false, got {enabled!r}", name, source_of)
