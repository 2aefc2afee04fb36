"""The qk gradients' factorised launch by ops/metala_core_gluon_kernels.py's Gluon kernel where it is built for the
launch (an sm90 GPU, the model's K 64 / V 128 / chunks of 64 in bf16, the stored decay rows, self-augmentation's
terms, a power-of-2 decay normalizer); everywhere else, and for the chunks of strong decay, the Triton kernel.

Imports triton on first use, as ops/metala_core_triton.py.
"""

from __future__ import annotations

import functools
import os

import torch

from .triton_launch import launch

GLUON_QK_GRADS = True
"""The factorised qk gradients by the Gluon kernel where it is built for them. H200, bf16, self-augmentation's terms
(bench/core_ncu.py --augment, B32 T2048 H16, one machine, session 48): 371 µs per launch against the Triton kernel's
442 and the core f+b 2.313 ms against 2.426 (at GLUON_QK_REGISTERS 168); bench/layer.py's block 0.840x of attention's
at T 2048 (session 47, the Triton kernel: 0.864x). Read at every backward, so that tests and benchmarks can take either
kernel."""

GLUON_QK_REGISTERS = 168
"""The Gluon kernel's register cap (ptxas maxnreg; 0: none): three programs per SM instead of two, for 104 B of
spills. H200, the core as GLUON_QK_GRADS's (session 48): 371 µs per launch against 440-450 uncapped; the block at
T 2048 0.840x against 0.848x. Read at every launch (a benchmark's --flip GLUON_QK_REGISTERS=0)."""

_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"  # the interpreter runs no Gluon
launches = 0
"""How many launches took the Gluon kernel (the tests check that the model's shape does)."""


def qk_grads(batch_heads, q, gate_logits, v, d_out, states, state_grads, decays, cums, dq, d_gate_logits, aug_da,
             aug_w, scale, **kwargs) -> bool:  # fmt: skip
    """The Triton qk-gradient kernel's factorised launch (metala_core_triton._backward_slice's arguments) by the Gluon
    kernel; False, launching nothing, where that kernel is not built for it."""
    global launches
    if not (GLUON_QK_GRADS and _built_for(q, v, d_out, states, state_grads, aug_da, kwargs)):
        return False
    kernel = _kernel()
    if kernel is None:
        return False
    cap = {"maxnreg": int(GLUON_QK_REGISTERS)} if int(GLUON_QK_REGISTERS) else {}
    launch(
        kernel, (kwargs["NT"] * 2, batch_heads),
        q, v, d_out, states, state_grads, decays, cums, dq, d_gate_logits, aug_da, aug_w, scale, kwargs["stride_q"],
        kwargs["stride_v"], kwargs["stride_dq"], kwargs["stride_dg"], kwargs["normalizer"], kwargs["T"], kwargs["NT"],
        H=kwargs["H"], DOUBLINGS=kwargs["DOUBLINGS"], num_warps=4, **cap,
    )  # fmt: skip
    launches += 1
    return True


def _built_for(q, v, d_out, states, state_grads, aug_da, kwargs) -> bool:
    shape = (kwargs["K"], kwargs["V"], kwargs["BT"]) == (64, 128, 64)
    forms = kwargs["STORED"] and kwargs["AUG"] and kwargs["DOUBLINGS"] > 0
    dtypes = {t.dtype for t in (q, v, d_out, states, state_grads)} == {torch.bfloat16}
    dense = all(t.is_contiguous() for t in (d_out, states, state_grads, aug_da))
    return shape and forms and dtypes and dense and q.is_cuda and not _INTERPRET and _hopper(q.device.index)


@functools.cache
def _hopper(device: int | None) -> bool:
    return torch.cuda.get_device_capability(device) == (9, 0)  # its wgmma is sm90's


@functools.cache
def _kernel():
    """The Gluon kernel, or None where this Triton has no Gluon (the Triton kernel then takes every launch)."""
    try:
        from .metala_core_gluon_kernels import qk_grads_kernel
    except ImportError:
        return None
    return qk_grads_kernel
