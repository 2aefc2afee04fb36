"""The benchmarks' breakdowns find every MetaLA core kernel (bench/kernel_timing.METALA_CORE_KERNELS): each kernel
function of ops/metala_core_*kernels.py and the Gluon modules, read from their source without triton."""

from __future__ import annotations

import ast
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _markers():
    spec = importlib.util.spec_from_file_location("kernel_timing", ROOT / "bench" / "kernel_timing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.METALA_CORE_KERNELS


def _kernels(path: pathlib.Path) -> list[str]:
    """Top-level functions named *_kernel under a jit decorator (triton.jit, gluon.jit, or a call of either)."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name.endswith("_kernel") and not node.name.startswith("_"):
            if any("jit" in ast.unparse(decorator) for decorator in node.decorator_list):
                names.append(node.name)
    return names


def test_every_core_kernel_is_marked():
    files = sorted((ROOT / "neox_metala" / "ops").glob("metala_core*.py"))
    kernels = [name for path in files for name in _kernels(path)]
    assert {"chained_kernel", "chained_grads_kernel", "qk_grads_kernel", "decay_rows_kernel"} <= set(kernels), kernels
    markers = _markers()
    assert [k for k in kernels if not any(m in k for m in markers)] == []
