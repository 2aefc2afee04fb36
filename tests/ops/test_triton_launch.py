"""ops/triton_launch.py: its launch signature (equal exactly where Triton would reuse one compiled kernel), its
normal path where it must keep to it (flag off, the interpreter, a kernel that returns no CompiledKernel), and on a
GPU, the direct launches of the MetaLA core's and the short conv's kernels bitwise equal to the normal launches,
also after a misaligned pointer or another batch size.

The signature tests need only torch. The interpreter test runs with TRITON_INTERPRET=1 (Triton's own interpreter:
its kernels return no CompiledKernel); the GPU tests run on a CUDA GPU without it.
"""

import importlib.util

import pytest
import torch
import triton_runs

from neox_metala.ops import triton_launch

KERNEL = object()  # a stand-in: the signature only hashes the kernel object
SCALE, NORMALIZER = 0.125, 16.0
INTERPRETER = pytest.mark.skipif(
    not triton_runs.INTERPRETED or importlib.util.find_spec("triton") is None, reason="needs TRITON_INTERPRET=1"
)
NATIVE = pytest.mark.skipif(triton_runs.DEVICE != "cuda", reason="direct launches need a CUDA GPU, no interpreter")


def key(*args, device=0, kernel=KERNEL, **kwargs):
    return triton_launch.signature(kernel, device, args, kwargs)


def test_equal_launches_have_equal_signatures():
    x, y = torch.zeros(64, dtype=torch.bfloat16), torch.zeros(64, dtype=torch.bfloat16)
    assert key(x, 300, 0.125, "tf32", None, BV=32, BF16=True) == key(y, 300, 0.125, "tf32", None, BV=32, BF16=True)
    assert key(x[8:]) == key(x)  # 16 bytes in: still aligned


@pytest.mark.parametrize(
    "first, second",
    [
        ((torch.zeros(64, dtype=torch.bfloat16),), (torch.zeros(64, dtype=torch.bfloat16)[1:],)),  # 2 bytes in
        ((torch.zeros(64, dtype=torch.float32)[2:],), (torch.zeros(64, dtype=torch.float32)[4:],)),
        ((torch.zeros(8, dtype=torch.bfloat16),), (torch.zeros(8, dtype=torch.float16),)),
        ((300,), (301,)),
        ((16,), (17,)),
        ((1,), (True,)),
        ((1,), (1.0,)),
        ((0.125,), (0.25,)),
        (("tf32",), ("ieee",)),
        ((None,), (0,)),
        ((64, 32), (64,)),
    ],
    ids=["misaligned", "misaligned-fp32", "dtype", "int", "int-alignment", "int-bool", "int-float", "float", "str",
         "none", "arity"],
)  # fmt: skip
def test_signatures_differ_where_triton_compiles_another_kernel(first, second):
    assert key(*first) != key(*second)


def test_signatures_differ_by_how_values_are_passed():
    assert key(64, 32) != key(64, BV=32) and key(64, BV=32) != key(64, BK=32) and key(64, BV=32) != key(64, 32, BV=32)


def test_signatures_differ_by_device_and_kernel():
    x = torch.zeros(8)
    assert key(x, device=0) != key(x, device=1) and key(x) != key(x, kernel=object())


def test_an_unknown_argument_type_has_no_signature():
    assert key(torch.zeros(2), [1, 2]) is None and key(x=(1, 2)) is None


@INTERPRETER
@pytest.mark.parametrize("interpret_check", [True, False], ids=["off-under-interpreter", "no-compiled-kernel"])
def test_interpreter_takes_the_normal_path(monkeypatch, interpret_check):
    """With the flag on: the interpreter check keeps every launch on the normal path; without it, the interpreter's
    kernels (no CompiledKernel) send their signatures to the normal path for good."""
    from neox_metala.ops import short_conv_op

    gen = torch.Generator().manual_seed(0)
    x, weight = torch.randn(2, 19, 40, generator=gen), torch.randn(40, 4, generator=gen)
    expected = short_conv_op.conv_forward_triton(x, weight)
    monkeypatch.setattr(triton_launch, "ENABLED", True)
    monkeypatch.setattr(triton_launch, "_INTERPRET", interpret_check)
    monkeypatch.setattr(triton_launch, "_plans", {})
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)  # a CPU-only torch has no current device
    before = triton_launch.direct_launches
    for _ in range(2):
        assert torch.equal(short_conv_op.conv_forward_triton(x, weight), expected)
    assert triton_launch.direct_launches == before
    assert list(triton_launch._plans.values()) == ([] if interpret_check else [None])


@INTERPRETER
@pytest.mark.parametrize("stored", [False, True], ids=["formed", "stored"])
def test_parameter_order_is_tritons_binding(monkeypatch, stored):
    """At every launch of the core, the short conv and the epilogue, parameter_order lays the call's values out as
    Triton's own binder (create_function_from_signature, which JITFunction.run binds with) does, the tuned config's
    included."""
    from triton.backends.compiler import BaseBackend
    from triton.runtime.autotuner import Autotuner
    from triton.runtime.jit import JITFunction, create_function_from_signature

    from neox_metala.ops import epilogue_op, metala_core_triton, short_conv_op

    calls = triton_runs.record_launches(monkeypatch, metala_core_triton, short_conv_op, epilogue_op)
    monkeypatch.setattr(metala_core_triton, "STORED_DECAY_ROWS", stored)
    gen = torch.Generator().manual_seed(0)
    q, logits, v, d_out = (torch.randn(1, 20, 1, dim, generator=gen) for dim in (16, 16, 32, 32))
    out, states = metala_core_triton.metala_core_fwd(q, logits, v, SCALE, NORMALIZER, keep_states=True)
    metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, d_out)
    x, weight = torch.randn(2, 19, 40, generator=gen), torch.randn(40, 4, generator=gen)
    short_conv_op.conv_backward_triton(x, weight, short_conv_op.conv_forward_triton(x, weight))
    o, g, dy = (torch.randn(1, 20, 1, 32, generator=gen) for _ in range(3))
    bias, balance = torch.randn(32, generator=gen), torch.randn(16, generator=gen)
    _, stats = epilogue_op.epilogue_forward_triton(o, q, logits, v, g, bias, balance, NORMALIZER)
    epilogue_op.epilogue_backward_triton(dy, o, q, logits, v, g, bias, balance, stats, NORMALIZER)
    # the core's forward 2 (the chained kernel, output_kernel's strong launch) and backward 6 (the states again by the
    # updates and their scan, the chained backward, the qk gradients' two forms, dv's strong launch), 7 with the
    # stored rows' kernel; the short conv's 2; the epilogue's 2
    assert len(calls) == 2 + 6 + stored + 2 + 2
    for kernel, args, kwargs in calls:
        tuned = kernel.best_config.all_kwargs() if isinstance(kernel, Autotuner) else {}
        jit = JITFunction((kernel.fn if tuned else kernel).fn)  # the interpreter's kernels wrap the same function
        bound, _, _ = create_function_from_signature(jit.signature, jit.params, BaseBackend)(*args, **kwargs, **tuned)
        order, constants = triton_launch.parameter_order(jit, tuned, args, kwargs)
        given = (*args, *kwargs.values(), *constants)
        assert list(bound) == jit.arg_names and len(order) == len(bound), jit.arg_names
        assert all(given[i] is value for i, value in zip(order, bound.values())), jit.arg_names


# --- on a GPU ---------------------------------------------------------------------------------------------------


def core_inputs(batch=2, layout="contiguous", seed=0):
    """bf16 q, gate logits, v (B, T300, H3, K64 / V128) and a cotangent: contiguous, views of one projection, or
    each one element past a 16-byte boundary."""
    from test_metala_core_triton import projection_views

    gen = torch.Generator(device="cuda").manual_seed(seed)
    shapes = [(batch, 300, 3, 64), (batch, 300, 3, 64), (batch, 300, 3, 128), (batch, 300, 3, 128)]
    tensors = [torch.randn(shape, device="cuda", generator=gen).bfloat16() for shape in shapes]
    if layout == "views":
        tensors[:3] = projection_views(*tensors[:3])
    elif layout == "misaligned":
        tensors = [torch.cat([t.new_zeros(1), t.flatten()])[1:].view(t.shape) for t in tensors]
        assert all(t.data_ptr() % 16 for t in tensors)
    return tensors


def core(q, logits, v, d_out):
    """Every core kernel: forward keeping its states, backward with them and with states recomputed."""
    from neox_metala.ops import metala_core_triton

    out, states = metala_core_triton.metala_core_fwd(q, logits, v, SCALE, NORMALIZER, keep_states=True)
    kept = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, d_out, states)
    recomputed = metala_core_triton.metala_core_bwd(q, logits, v, SCALE, NORMALIZER, d_out)
    return [out, states, *kept, *recomputed]


def core_launches():
    # forward 2 (the chained kernel, output_kernel's strong-decay launch: metala_core_triton._chained_forward's pick at
    # T 300);
    # backward 2 (the decay rows: STORED_DECAY_ROWS; the chained state gradients and dv: _chained_backward's pick at
    # T 300) + the qk gradients once per form (metala_core_triton's `_by_form`: the factorised chunks, then the
    # strong-decay ones) and dv's strong-decay launch, 2 more where it recomputes the states
    return 2 + (2 + 2 + 1) + (4 + 2 + 1)


CONV_LAUNCHES = 3  # the forward, the backward, the sum of its weight-gradient partials (ops/partial_sums.py)


def conv(x, weight, d_out):
    from neox_metala.ops import short_conv_op

    return [short_conv_op.conv_forward_triton(x, weight), *short_conv_op.conv_backward_triton(x, weight, d_out)]


def conv_inputs(layout="strided", batch=2, seed=0):
    """bf16 x and cotangent (B, T300, C256), fp32 weight: x and the cotangent (seq, batch) -> (batch, seq) views as
    the layer hands them over ("strided"), x also one element past a 16-byte boundary ("misaligned"), or contiguous
    copies."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    x, d_out = (torch.randn(300, batch, 256, device="cuda", generator=gen).bfloat16() for _ in range(2))
    weight = torch.randn(256, 4, device="cuda", generator=gen)
    if layout == "misaligned":
        x = torch.cat([x.new_zeros(1), x.flatten()])[1:].view(x.shape)
    x, d_out = x.transpose(0, 1), d_out.transpose(0, 1)
    return (x.contiguous(), weight, d_out.contiguous()) if layout == "contiguous" else (x, weight, d_out)


def assert_direct_equals_normal(call, inputs, launches, monkeypatch):
    """call(*inputs) with the flag off, then twice with it on: bitwise equal; the second on direct launches only
    where the first recorded its signatures."""
    monkeypatch.setattr(triton_launch, "ENABLED", False)
    expected = call(*inputs)
    monkeypatch.setattr(triton_launch, "ENABLED", True)
    for attempt in range(2):
        before = triton_launch.direct_launches
        got = call(*inputs)
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True)), f"call {attempt}"
    assert triton_launch.direct_launches - before == launches


@pytest.mark.gpu
@NATIVE
@pytest.mark.parametrize("layout", ["contiguous", "views"])
@pytest.mark.parametrize("kernels", ["core", "conv"])
def test_direct_launches_equal_normal_launches(kernels, layout, monkeypatch):
    if kernels == "core":
        assert_direct_equals_normal(core, core_inputs(layout=layout), core_launches(), monkeypatch)
    else:
        assert_direct_equals_normal(
            conv, conv_inputs("strided" if layout == "views" else layout), CONV_LAUNCHES, monkeypatch
        )


@pytest.mark.gpu
@NATIVE
def test_signatures_after_aligned_ones(monkeypatch):
    """After aligned launches: inputs one element off a 16-byte boundary (Triton's aligned build would be wrong for
    them), and another batch size (the grids read B or B·H, which no argument of a contiguous input's kernels
    holds: the same signature, another grid)."""
    assert_direct_equals_normal(core, core_inputs(), core_launches(), monkeypatch)
    assert_direct_equals_normal(core, core_inputs(layout="misaligned", seed=1), core_launches(), monkeypatch)
    assert_direct_equals_normal(core, core_inputs(batch=3, seed=2), core_launches(), monkeypatch)
    assert_direct_equals_normal(conv, conv_inputs("contiguous"), CONV_LAUNCHES, monkeypatch)
    assert_direct_equals_normal(conv, conv_inputs("contiguous", batch=3, seed=1), CONV_LAUNCHES, monkeypatch)
    assert_direct_equals_normal(conv, conv_inputs("misaligned", seed=2), CONV_LAUNCHES, monkeypatch)
