"""Parallelism keys (NeoX's NeoXArgsParallelism subset)."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import Section, SourceOf, require


@dataclass
class ParallelConfig(Section):
    pipe_parallel_size: int = 0
    """Pipeline stages. 0 = a plain sequential model; >= 1 = the DeepSpeed pipeline engine with that many
    stages (1 = pipeline engine on one stage, as in NeoX). NeoX default 0."""

    model_parallel_size: int = 1
    """Tensor-parallel ways (megatron-core). Must divide num_attention_heads. NeoX default 1."""

    def check_values(self, source_of: SourceOf) -> None:
        require(
            self.pipe_parallel_size >= 0,
            f"pipe_parallel_size must be >= 0, got {self.pipe_parallel_size}",
            "pipe_parallel_size",
            source_of,
        )
        require(
            self.model_parallel_size >= 1,
            f"model_parallel_size must be >= 1, got {self.model_parallel_size}",
            "model_parallel_size",
            source_of,
        )

    @property
    def pipeline_stages(self) -> int:
        """Number of pipeline stages actually used: pipe_parallel_size 0 and 1 both mean one stage."""
        return max(self.pipe_parallel_size, 1)

    @property
    def is_pipe_parallel(self) -> bool:
        """True when the model is built as a DeepSpeed PipelineModule (pipe_parallel_size >= 1), as NeoX does."""
        return self.pipe_parallel_size >= 1
