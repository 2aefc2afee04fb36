"""MetaLA math. Layers call `metala_mix` and `short_conv`; `metala.py` alone decides which kernel runs."""

from .metala import (BACKENDS, DEFAULT_CHUNK_SIZE, augment_norm_gate, choose_backend, decay_and_key,
                     fla_available, gla_recurrence, metala_mix, short_conv, split_heads, token_mix)

__all__ = ["BACKENDS", "DEFAULT_CHUNK_SIZE", "augment_norm_gate", "choose_backend", "decay_and_key",
           "fla_available", "gla_recurrence", "metala_mix", "short_conv", "split_heads", "token_mix"]
