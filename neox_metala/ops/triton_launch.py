"""Launches a Triton kernel (a @triton.jit function, or an autotuner over one) with less host time than
`kernel[grid](*args, **kwargs)`.

Why: Triton 3.6's normal path costs ~50 µs of host time per launch (the autotuner's dicts and key, the JIT
binder's specialization, its cache key, the grid's meta dict), and our kernels are launched ~960 times per step of
the 24-layer model: on an H200 that step was host-bound (kernels ~371 of 412 ms).

The first launch of each launch signature takes the normal path (autotune, compile, launch) and keeps the
CompiledKernel it returns; later ones call that kernel's runner with every parameter in signature order. The
signature holds what Triton's cache keys on (each tensor's dtype and 16-byte alignment, the current device) plus
the exact value of every scalar, so reuse is as safe as Triton's own cache. Anything not as Triton 3.x makes it
sends the signature to the normal path for good: a launch may be slow, never wrong.
"""

from __future__ import annotations

import os

import torch

ENABLED = os.environ.get("NEOX_METALA_DIRECT_LAUNCH", "1") == "1"
"""Read at each launch; NEOX_METALA_DIRECT_LAUNCH=0 turns it off (docs/benchmarks.md, session 12, has the step it
is part of)."""
_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"  # the interpreter's kernels return no CompiledKernel
direct_launches = 0
"""How many launches took the direct path (the tests check that repeated calls do)."""
_plans: dict = {}  # launch signature -> _Plan, or None: the normal path for good
_UNSEEN = object()


def launch(kernel, grid, *args, **kwargs) -> None:
    """kernel[grid](*args, **kwargs), through the kernel compiled for this launch signature once there is one."""
    global direct_launches
    key = signature(kernel, torch.cuda.current_device(), args, kwargs) if ENABLED and not _INTERPRET else None
    plan = _UNSEEN if key is None else _plans.get(key, _UNSEEN)
    if plan is _UNSEEN or plan is None:
        compiled = kernel[grid](*args, **kwargs)
        if key is not None and plan is _UNSEEN:
            try:
                _plans[key] = _plan(kernel, compiled, grid, args, kwargs)
            except Exception:  # whatever surprised us, the normal path is right
                _plans[key] = None
        return
    plan.launch(grid, args, kwargs)
    direct_launches += 1


def signature(kernel, device, args, kwargs):
    """A hashable key equal for two launches only if Triton would run one compiled kernel for both; None for an
    argument of a type it does not know (such launches always take the normal path)."""
    try:
        # len(args) and the keyword names: the same values passed another way must not match
        return (kernel, device, len(args), *kwargs, *map(_spec, args), *map(_spec, kwargs.values()))
    except TypeError:
        return None


def _spec(value):
    if isinstance(value, torch.Tensor):  # Triton specializes pointers on 16-byte alignment
        return value.dtype, value.get_device(), value.data_ptr() % 16 == 0
    kind = type(value)
    if kind is int or kind is str or value is None:
        return value
    if kind is float or kind is bool:  # 1 == 1.0 == True, but Triton types them apart
        return kind, value
    raise TypeError(f"no launch signature for a {kind.__name__}")


class _Plan:
    """One signature's compiled kernel; `order` indexes each of its parameters in (*args, *kwargs, *constants),
    the constants being the autotuner's chosen meta-parameters and the kernel's defaults."""

    def __init__(self, compiled, order, constants, meta):
        self.compiled, self.order, self.constants, self.meta = compiled, order, constants, meta

    def launch(self, grid, args, kwargs):
        given = (*args, *kwargs.values(), *self.constants)
        # a callable grid is evaluated at each launch: it may read values that are no arguments (B·H for one)
        grid = (*(grid(self.meta) if callable(grid) else grid), 1, 1)
        self.compiled[grid[:3]](*[given[i] for i in self.order])


def _plan(kernel, compiled, grid, args, kwargs):
    """The plan for a launch that just took the normal path and returned `compiled`; None where anything is not as
    Triton 3.6's JITFunction.run and Autotuner.run make it."""
    import triton
    from triton.compiler.compiler import CompiledKernel
    from triton.runtime.autotuner import Autotuner
    from triton.runtime.jit import JITFunction

    try:  # a Gluon kernel's function differs from a Triton kernel's in its binder only
        from triton.experimental.gluon._runtime import GluonJITFunction
    except ImportError:
        GluonJITFunction = JITFunction

    if hasattr(compiled, "result"):  # compiled asynchronously
        compiled = compiled.result()
    fn, tuned = kernel, {}
    if isinstance(kernel, Autotuner):
        if kernel.best_config.pre_hook is not None:  # the normal path runs it at every launch
            return None
        fn, tuned = kernel.fn, kernel.best_config.all_kwargs()
    if not (
        triton.__version__.startswith("3.")
        and type(fn) in (JITFunction, GluonJITFunction)
        and not fn.pre_run_hooks
        and isinstance(compiled, CompiledKernel)
        and callable(getattr(compiled, "__getitem__", None))
        and getattr(compiled, "run", None) is not None
        and getattr(compiled.src, "fn", None) is fn
    ):
        return None
    arguments = parameter_order(fn, tuned, args, kwargs)
    if arguments is None:
        return None
    order, constants = arguments
    given = (*args, *kwargs.values(), *constants)
    values = [given[i] for i in order]
    # the compiled kernel must be this function's, built for these constexprs at these positions
    if list(compiled.src.signature) != fn.arg_names or any(
        len(path) != 1 or not _same(values[path[0]], value) for path, value in compiled.src.constants.items()
    ):
        return None
    meta = {name: value for name, value in zip(fn.arg_names, values) if not isinstance(value, torch.Tensor)}
    try:  # a grid that reads a tensor stays on the normal path
        if callable(grid):
            grid(meta)
    except Exception:
        return None
    return _Plan(compiled, order, constants, meta)


def parameter_order(fn, tuned, args, kwargs):
    """(order, constants): the kernel's parameters, each as an index in (*args, *kwargs.values(), *constants), the
    constants being the tuned meta-parameters and the defaults (as Triton's binder applies them); None where a
    parameter has no value."""
    position = {name: index for index, name in enumerate(kwargs, len(args))}
    constants, order = [], []
    for index, param in enumerate(fn.params):
        if index < len(args) or param.name in position:
            order.append(index if index < len(args) else position[param.name])
        elif param.name in tuned or param.has_default:
            order.append(len(args) + len(kwargs) + len(constants))
            constants.append(tuned[param.name] if param.name in tuned else param.default)
        else:
            return None
    return order, tuple(constants)


def _same(ours, theirs) -> bool:
    return type(ours) is type(theirs) and ours == theirs
