"""Data prep: Pile-format corpora -> tokenized, sharded megatron `.bin/.idx`, resumable and parallel.

Command line: `python -m neox_metala.data_prep {tokenize,merge,list,inspect,count,validate,train-tokenizer,sample}`
(also `neox-metala-prep`). Python: `prepare_sample(out_dir)` for the bundled corpus,
`run_tokenize(TokenizeOptions(...))` for any other. Importing this package is light: no torch, and submodules load
on first use.
"""

from __future__ import annotations


def prepare_sample(out_dir=None, *, workers=None, progress=False) -> dict:
    from .sample import prepare_sample as _prepare_sample

    return _prepare_sample(out_dir, workers=workers, progress=progress)


def __getattr__(name):
    if name in ("TokenizeOptions", "run_tokenize"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)


__all__ = ["prepare_sample", "run_tokenize", "TokenizeOptions"]
