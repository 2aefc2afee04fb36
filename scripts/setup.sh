#!/usr/bin/env bash
# Create .venv (if missing) and install neox-metala with its test extras; idempotent and quick when done.
# TORCH_SPEC overrides the torch requirement used when no torch is installed yet (default: torch==2.13.0,
# which on the project's CPU machines is a local CPU wheel and elsewhere the default CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
. .venv/bin/activate
stamp=.venv/.neox-metala-installed
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
echo "setup: installing into .venv (first run takes about a minute)"
# torch first and explicitly: a bare 'torch' requirement would otherwise pull a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip install -q "${TORCH_SPEC:-torch==2.13.0}"
extras=dev
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then extras=dev,gpu; fi
# uv installs the rest in ~25 s where pip takes ~2.5 minutes; the torch installed above is pinned, so nothing can
# replace it with another (multi-GB) build. pip when uv cannot be had.
echo "torch==$(python -c 'import torch; print(torch.__version__)')" > .venv/torch-constraint.txt
if pip install -q uv 2>/dev/null && command -v uv >/dev/null; then
    uv pip install -q --python .venv/bin/python -c .venv/torch-constraint.txt -e ".[${extras}]"
else
    pip install -q -c .venv/torch-constraint.txt -e ".[${extras}]"
fi
echo "$want" > "$stamp"
