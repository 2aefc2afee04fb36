#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the CPU test suite; GPU tests skip cleanly without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Two workers on a CPU machine (each test file on one worker: the suite takes about half the time on 2 cores);
# one on a GPU machine, where the GPU tests must not share the GPUs. PYTEST_WORKERS overrides.
workers=${PYTEST_WORKERS:-2}
if [ -z "${PYTEST_WORKERS:-}" ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    workers=0
fi
# Lint and formatting first (seconds): a violation fails the run as a test would.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Every test process imports torch, DeepSpeed and megatron-core; uv installs them without bytecode, so with
# PYTHONDONTWRITEBYTECODE set (as in many containers) each of the suite's ~100 processes would compile their sources
# again. Let the first one write the .pyc files (into .venv and the ignored __pycache__ folders).
unset PYTHONDONTWRITEBYTECODE
# Files in the order tests/conftest.py gives them (longest first), not xdist's most-tests-first.
exec .venv/bin/python -m pytest -q -n "$workers" --dist loadfile --no-loadscope-reorder tests "$@"
