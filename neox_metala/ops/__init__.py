"""MetaLA math. Layers call `metala_mix` and `short_conv`; `metala.py` alone decides which kernel runs.

`options` (MetaLAOptions, the projection layout) imports without torch, so the config can use it; the kernels
load on first use of one of their names.
"""

from .options import BACKENDS, DEFAULT_CHUNK_SIZE, PROJECTION_PARTS, MetaLAOptions, projection_widths

_KERNEL_NAMES = (
    "augment_norm_gate",
    "choose_backend",
    "decay_and_key",
    "fla_available",
    "gla_recurrence",
    "metala_mix",
    "short_conv",
    "split_heads",
    "token_mix",
)

__all__ = ["BACKENDS", "DEFAULT_CHUNK_SIZE", "PROJECTION_PARTS", "MetaLAOptions", "projection_widths", *_KERNEL_NAMES]


def __getattr__(name: str):
    if name in _KERNEL_NAMES:
        from . import metala

        # only the name asked for: a test that patches one metala function while another is first looked up here
        # must not leave its patch cached in this namespace
        globals()[name] = getattr(metala, name)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
