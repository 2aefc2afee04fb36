"""The language-model loss: mean cross-entropy over unmasked tokens, vocab-parallel.

Two forms of the same number:
  * from logits (seq, batch, vocab / tp): megatron-core's vocab_parallel_cross_entropy on fp32 logits;
  * from (hidden, head weight), what the heads return while training (`head.loss_input`): the logits are formed
    CHUNK_TOKENS tokens at a time and the gradients of hidden and weight are computed in the same pass, so
    neither the fp32 logits of the whole batch nor the softmax for the backward are ever held (~5 GB for 8 x 2048
    tokens of a 50k vocabulary), and the backward is a scaling. Same arithmetic as the first form: bf16 logits
    from one GEMM, softmax in fp32, gradients cast to the weight dtype for the GEMMs.
    On a GPU with the whole vocabulary on one rank each chunk's softmax, loss and gradient are one Triton kernel
    (ops/cross_entropy_op.py); elsewhere (CPU, vocab-parallel ranks) compiled or eager PyTorch steps.
"""

from __future__ import annotations

import functools

import torch
import torch.distributed as dist
import torch.nn.functional as F
from megatron.core import tensor_parallel

from .. import parallel
from ..ops import cross_entropy_op

CHUNK_TOKENS = 2048  # 2048 x 50,304 fp32 logits: 0.4 GB; big enough for full-speed GEMMs
# On CPU, each fp32 temporary of a chunk stays under glibc's largest mmap threshold (32 MiB): larger blocks are
# mmapped and unmapped at every allocation, and their page faults cost ~0.3 s per step of the embedded default.
CPU_CHUNK_BYTES = 16 << 20


def chunk_tokens(hidden: torch.Tensor, vocab_slice: int) -> int:
    if hidden.is_cuda:
        return CHUNK_TOKENS
    return max(1, min(CHUNK_TOKENS, CPU_CHUNK_BYTES // (4 * vocab_slice)))


def cross_entropy_loss(outputs, labels_and_mask):
    """Mean over unmasked tokens; `outputs` are logits (seq, batch, vocab / tp) or a head's (hidden, weight)."""
    labels, loss_mask = labels_and_mask  # (batch, seq) each
    labels, mask = labels.transpose(0, 1).contiguous(), loss_mask.transpose(0, 1).float()
    if isinstance(outputs, tuple):
        hidden, weight = outputs
        token_weights = (mask / mask.sum().clamp_min(1.0)).flatten()
        return linear_cross_entropy(hidden.flatten(0, 1), weight, labels.flatten(), token_weights)
    losses = tensor_parallel.vocab_parallel_cross_entropy(outputs.float(), labels)
    return (losses * mask).sum() / mask.sum().clamp_min(1.0)


def linear_cross_entropy(hidden, weight, labels, token_weights):
    """Σ_i w_i CE(hidden_i · weight^T, label_i): hidden (N, H) replicated over TP, weight this rank's (V/tp, H)
    vocab slice, labels (N,) global ids, w (N,) fp32. Returns a 0-dim tensor, fp32 for half inputs."""
    # Inside a Function's forward grad mode is off: whether gradients will be wanted is decided here.
    want_grads = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    return _LinearCrossEntropy.apply(hidden, weight, labels, token_weights, want_grads)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, labels, token_weights, want_grads):
        group = parallel.tensor_parallel_group()
        vocab_start = parallel.tensor_parallel_rank() * weight.shape[0]
        grad_hidden = torch.empty_like(hidden) if want_grads else None
        wide = _wide(hidden.dtype)
        grad_weight = torch.zeros(weight.shape, dtype=wide, device=weight.device) if want_grads else None
        steps = _steps(hidden.is_cuda)
        total = torch.zeros((), dtype=wide, device=hidden.device)
        chunk = chunk_tokens(hidden, weight.shape[0])
        vocab_split = dist.get_world_size(group) > 1
        # one rank's whole vocabulary on a GPU: one kernel per chunk, the gradient written over the logits
        one_kernel = not vocab_split and cross_entropy_op.applies(hidden)
        row_losses = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device) if one_kernel else None
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk]
            logits = F.linear(h, weight)
            local = labels[start : start + chunk] - vocab_start
            w = token_weights[start : start + chunk]
            if one_kernel:
                cross_entropy_op.cross_entropy_rows(logits, local, w, row_losses[start : start + chunk], want_grads)
                grad_logits = logits
            else:
                if vocab_split:  # the max over every rank's slice first, then the sums
                    maxes = logits.amax(-1).to(wide)
                    _all_reduce(maxes, group, dist.ReduceOp.MAX)
                    target, sum_exp = _all_reduce(torch.stack(steps.partials(logits, maxes, local)), group)
                else:
                    maxes, target, sum_exp = steps.max_and_partials(logits, local)
                total += steps.loss(target, sum_exp, maxes, w)
                grad_logits = steps.grad_logits(logits, maxes, sum_exp, local, w) if want_grads else None
            if want_grads:
                grad_hidden[start : start + chunk] = grad_logits @ weight
                _accumulate_product(grad_weight, grad_logits.t(), h)
        if one_kernel:
            total = row_losses.sum().to(wide)
        if want_grads:
            _all_reduce(grad_hidden, group, dist.ReduceOp.SUM)  # hidden feeds every rank's vocab slice
            ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_hidden, grad_weight = ctx.saved_tensors
        return (
            grad_hidden * grad_total.to(grad_hidden.dtype),
            grad_weight * grad_total.to(grad_weight.dtype),
            None,
            None,
            None,
        )


def _accumulate_product(accumulator, a, b):
    """accumulator += a @ b. Half inputs into an fp32 accumulator on CUDA: one GEMM that adds in fp32 (cuBLAS's
    beta = 1), instead of a product rounded to half precision and a separate fp32 add over the whole (vocab, hidden)
    weight gradient at every chunk (~0.2 ms each on an H200 at a 50k vocabulary, 32 per step of the 380M run)."""
    if a.is_cuda and accumulator.dtype != a.dtype and _fp32_accumulating_gemm():
        torch.addmm(accumulator, a, b, out_dtype=accumulator.dtype, out=accumulator)
    else:
        accumulator += a @ b


@functools.cache
def _fp32_accumulating_gemm() -> bool:
    """Whether this PyTorch has addmm's out_dtype form for half inputs on CUDA (2.8 and later), tried on the layout
    the loss gives it (a transposed operand, odd sizes)."""
    gen = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(5, 3, device="cuda", generator=gen).bfloat16()
    b = torch.randn(5, 7, device="cuda", generator=gen).bfloat16()
    accumulator = torch.randn(3, 7, device="cuda", generator=gen)
    expected = accumulator.double() + a.t().double() @ b.double()
    try:
        torch.addmm(accumulator, a.t(), b, out_dtype=torch.float32, out=accumulator)
    except (RuntimeError, TypeError):
        return False
    return bool(torch.allclose(accumulator.double(), expected, atol=1e-5))


def _wide(dtype):
    return torch.promote_types(dtype, torch.float32)  # fp32 softmax for half logits; fp64 stays fp64 (tests)


def _all_reduce(tensor, group, op=dist.ReduceOp.SUM):
    if dist.get_world_size(group) > 1:
        dist.all_reduce(tensor, op=op, group=group)
    return tensor


def _partials(logits, maxes, local):
    """This rank's share of the target logit (0 where the label is another rank's) and of Σ exp(l − max)."""
    inside = (local >= 0) & (local < logits.shape[-1])
    shifted = logits.to(maxes.dtype) - maxes[:, None]
    target = shifted.gather(1, local.clamp(0, logits.shape[-1] - 1)[:, None]).squeeze(1) * inside
    return target, shifted.exp().sum(-1)


def _max_and_partials(logits, local):
    """The row maxima and `_partials` in one function: compiled, one kernel over the logits (inductor's softmax
    pattern) instead of a separate read of them for the maxima (one rank holds the whole vocabulary)."""
    maxes = logits.amax(-1).to(_wide(logits.dtype))
    return (maxes, *_partials(logits, maxes, local))


def _loss(target, sum_exp, maxes, w):
    return ((sum_exp.log() - target) * w).sum()


def _grad_logits(logits, maxes, sum_exp, local, w):
    """w_i (softmax_i − onehot_i), in the logits' dtype (what the GEMMs of the backward read)."""
    probs = (logits.to(maxes.dtype) - maxes[:, None]).exp() / sum_exp[:, None]
    # a comparison, not an int64 one-hot (8 bytes per logit on CPU); no column matches another rank's label
    target = torch.arange(logits.shape[-1], device=logits.device) == local[:, None]
    return (torch.where(target, probs - 1, probs) * w[:, None]).to(logits.dtype)


class _Steps:
    def __init__(self, compile_them: bool):
        wrap = (lambda f: torch.compile(f, dynamic=False)) if compile_them else (lambda f: f)
        self.partials, self.loss, self.grad_logits = wrap(_partials), wrap(_loss), wrap(_grad_logits)
        self.max_and_partials = wrap(_max_and_partials)


@functools.cache
def _steps(on_gpu: bool) -> _Steps:
    return _Steps(compile_them=on_gpu)  # fused into one pass over the logits each; eager on CPU (exact tests)
