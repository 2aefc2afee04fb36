#!/usr/bin/env bash
# Train on this machine: every visible GPU (or num_gpus: N from the configs); without a GPU, CPU processes
# with gloo (num_gpus: N of them, default 1).
#
#   bash launch/single_node.sh                              # configs/metala-1B.yml configs/local_setup.yml
#   bash launch/single_node.sh tiny.yml local_setup.yml     # other files from configs/ (CONFIG_DIR=... to move)
#   DRY_RUN=1 bash launch/single_node.sh                    # print the launcher command only
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
config_dir=${CONFIG_DIR:-configs}
if [ "$#" -gt 0 ]; then configs=("$@"); else configs=(metala-1B.yml local_setup.yml); fi

# NVLink SHARP (multicast) stays off: it reserves GPU memory and has hung collectives on some drivers.
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
# One Triton kernel cache per user and machine, not on a shared filesystem that all ranks write at once.

extra=()
[ -n "${DRY_RUN:-}" ] && extra+=(--dry-run)
exec "$python" deepy.py train.py -d "$config_dir" "${configs[@]}" "${extra[@]}"
