"""Model code that `export.hf` copies into every exported folder (with neox_metala/ops' reference, chunked and
short-conv files beside it, as metala_*.py). transformers imports it from there (trust_remote_code); it is not
meant to be imported from this package, where its relative imports of metala_*.py do not resolve."""
