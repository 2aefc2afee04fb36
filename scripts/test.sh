#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the CPU test suite; GPU tests skip cleanly without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q tests "$@"
