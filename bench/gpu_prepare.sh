#!/usr/bin/env bash
# Here, before the first device call of a session: build .gpu/ (git-ignored), which every GPU call carries
# (`carry: [".gpu"]`) and bench/gpu_session.sh installs from. A session's checkout starts without it (it is not
# committed: ~45 MB of wheels), and its kernel cache only comes back from a call's $OUT.
#   .gpu/wheels/           the engines and extras the GPU image lacks (../shared/tools/device-wheels.sh)
#   .gpu/plain_transformer.py   the whole-model baseline (bench/train.py --baseline)
#   .gpu/gpu-stack-check.py     a 30-second smoke test of the stack
# Usage: bash bench/gpu_prepare.sh   (idempotent; ~2 minutes the first time: DeepSpeed's wheel is built from its sdist)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED:-../shared}
python=${PYTHON:-$PWD/.venv/bin/python}
[ -x "$python" ] || { echo "no $python: run scripts/setup.sh first (the wheels are built with the project's torch)"; exit 1; }
mkdir -p .gpu
ls .gpu/wheels/engines/deepspeed-*.whl .gpu/wheels/extras/zstandard-* >/dev/null 2>&1 ||
    PYTHON=$python bash "$shared/tools/device-wheels.sh" .gpu/wheels
# W&B's wheels are large and the GPU suite does not need them: leave room for a kernel cache in the 64 MiB carry
rm -f .gpu/wheels/extras/wandb-*
cp "$shared/bench/plain_transformer.py" "$shared/tools/gpu-stack-check.py" .gpu/
du -sh .gpu
