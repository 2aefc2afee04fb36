"""SwiGLU MLP, tensor-parallel: W2(SiLU(W1 x) ⊙ W3 x), no biases (spec §3.1)."""

from __future__ import annotations

import torch
from torch import nn

from .. import parallel
from ..ops import swiglu_op
from . import init
from .settings import BlockSettings


class ParallelSwiGLU(nn.Module):
    """SwiGLU, intermediate width split over TP ranks: x (..., hidden) -> (..., hidden), all-reduced."""

    def __init__(self, settings: BlockSettings, layer_number: int):
        super().__init__()
        hidden, width = settings.hidden_size, settings.mlp_width
        tp = parallel.tensor_parallel_size()
        if width % tp:
            raise ValueError(f"intermediate_size {width} is not divisible by model_parallel_size {tp}")
        config = parallel.linear_config(settings.params_dtype)
        # W1 and W3 in one GEMM; each rank holds [W1 shard; W3 shard].
        self.w1_w3 = parallel.ColumnParallelLinear(
            hidden, 2 * width, config=config, init_method=init.allocate_only, bias=False, gather_output=False
        )
        self.w2 = SwiGLURowParallelLinear(
            width,
            hidden,
            config=config,
            init_method=init.allocate_only,
            bias=False,
            input_is_parallel=True,
            skip_bias_add=False,
        )
        self._initialize(settings, layer_number)
        # one rank: megatron-core's layer would only call the op (no reduction), so the op runs directly and adds
        # the residual in its GEMM; under TP the residual is added after the reduction across ranks
        self.residual_in_gemm = tp == 1

    def _initialize(self, s: BlockSettings, layer_number: int) -> None:
        std, out_std = init.stds(s)
        full = (s.mlp_width, s.hidden_size)
        shards = [
            init.local_shard(full, 0, init.normal(std), s.seed, layer_number, "mlp", name) for name in ("w1", "w3")
        ]
        init.fill_(self.w1_w3.weight, torch.cat(shards))
        init.fill_(
            self.w2.weight, init.local_shard(full[::-1], 1, init.normal(out_std), s.seed, layer_number, "mlp", "w2")
        )
        init.mark_tensor_parallel(self.w1_w3.weight, 0, (s.mlp_width, s.mlp_width))
        init.mark_tensor_parallel(self.w2.weight, 1)

    def forward(self, x, residual=None):
        """-> SwiGLU(x), plus `residual` when given (on one TP rank added by the down projection's GEMM itself)."""
        gate_and_up, _ = self.w1_w3(x)
        if residual is not None and self.residual_in_gemm:
            return swiglu_op.swiglu_linear(gate_and_up, self.w2.weight, residual)
        out, _ = self.w2(gate_and_up)
        return out if residual is None else residual + out


class SwiGLURowParallelLinear(parallel.RowParallelLinear):
    """W2 as megatron-core's RowParallelLinear (its weight, its all-reduce across TP ranks), whose input is
    [gate | up] (twice its input width) and whose GEMM applies SiLU(gate) ⊙ up first: ops/swiglu_op.py's one op,
    which forms the product again in its backward instead of the GEMM's autograd keeping it (2.2 GB at the 380M
    model's micro batch) and runs the activation's backward at its byte floor."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

        # megatron-core calls it with keywords; bias is None there (a row-parallel bias is added after the reduce)
        def swiglu_gemm(input, weight, **unused):  # noqa: A002
            return swiglu_op.swiglu_linear(input, weight)

        self._forward_impl = swiglu_gemm
