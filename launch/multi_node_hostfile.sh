#!/usr/bin/env bash
# Train on several machines listed in a hostfile, through DeepSpeed's runner and pdsh (passwordless ssh from
# this machine to every host, the same checkout and .venv path on each, a shared or identical data path).
#
#   HOSTFILE=launch/hostfile.example bash launch/multi_node_hostfile.sh metala-1B.yml local_setup.yml
#   HOSTFILE=... MASTER_ADDR=10.0.0.1 DRY_RUN=1 bash launch/multi_node_hostfile.sh
#
# The hostfile (and master_addr, when MASTER_ADDR is set) reach deepy.py as one more YAML file, so leave
# `hostfile` / `master_addr` out of your own configs (a key set in two files is an error). Environment
# variables reach the other hosts only through a .deepspeed_env file (see launch/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${HOSTFILE:?set HOSTFILE to a file of 'hostname slots=N' lines, e.g. launch/hostfile.example}"
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
config_dir=${CONFIG_DIR:-configs}
if [ "$#" -gt 0 ]; then configs=("$@"); else configs=(metala-1B.yml local_setup.yml); fi

launch_yaml=$(mktemp "${TMPDIR:-/tmp}/neox-metala-launch.XXXXXX.yml")
trap 'rm -f "$launch_yaml"' EXIT
{
    echo "hostfile: \"$(realpath "$HOSTFILE")\""
    echo "launcher: pdsh"
    [ -n "${MASTER_ADDR:-}" ] && echo "master_addr: \"$MASTER_ADDR\""
} > "$launch_yaml"

export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}

extra=()
[ -n "${DRY_RUN:-}" ] && extra+=(--dry-run)
# Not exec: the trap removes the temporary YAML once the run ends (deepy.py has read it long before).
"$python" deepy.py train.py -d "$config_dir" "${configs[@]}" "$launch_yaml" "${extra[@]}"
