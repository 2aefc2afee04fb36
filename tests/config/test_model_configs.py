"""configs/metala-*.yml, the Pile runs (issue 7): each combined with pile_data.yml and local_setup_wandb.yml as a
user runs it. Sizes (a meta-device build of the real model), batch arithmetic on the cluster each file states,
the training recipe of metala-spec §8, layer types, and the launch scripts' dry runs for those clusters.

The cluster shape is not a config key (the launch scripts set the hostfile and num_gpus, and a key may be set in
one file only), so each file states it in one comment line, "# Cluster: N nodes x 8 GPUs (80 GB each) ->
data_parallel_size D, gradient_accumulation_steps A", which these tests read and check.
"""

import base64
import json
import math
import os
import pathlib
import re
import resource
import subprocess
import sys

import pytest

from neox_metala.config import layer_types, load_config, padded_vocab_size

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs"
SIZE_CONFIGS = sorted(path.name for path in CONFIG_DIR.glob("metala-*.yml"))
RUN_FILES = ("pile_data.yml", "local_setup_wandb.yml")  # data, then run paths and W&B
GPT_NEOX_20B_VOCAB = 50277  # pile_data.yml's tokenizer; the file itself is the user's to supply
CLUSTER_LINE = re.compile(
    r"^# Cluster: (\d+) nodes? x (\d+) GPUs \(80 GB each\) -> data_parallel_size (\d+), "
    r"gradient_accumulation_steps (\d+)$",
    re.MULTILINE,
)
MiB = 2**20
# metala-spec §8.1: 0.5M-token batches at 360M and 2M at 1.4B (M = 2^20, GPT-NeoX's convention: 2M = 1024 x 2048);
# token budgets 15B (360M) and 300B (1.4B); 1B (100B) and 3B (300B) are our choice, stated in the files.
TOKENS_PER_BATCH = {"380M": MiB // 2, "1B": 2 * MiB, "1.4B": 2 * MiB, "3B": 2 * MiB}
TOKEN_BUDGET = {"380M": 15e9, "1B": 100e9, "1.4B": 300e9, "3B": 300e9}
PEAK_LR = {"380M": 3.0e-4, "1B": 2.0e-4, "1.4B": 2.0e-4, "3B": 2.0e-4}


def size_name(config: str) -> str:
    return re.fullmatch(r"metala-([\d.]+[MB])\.yml", config).group(1)


def nominal_parameters(config: str) -> float:
    name = size_name(config)
    return float(name[:-1]) * {"M": 1e6, "B": 1e9}[name[-1]]


def stated_cluster(config: str) -> tuple[int, int, int, int]:
    """(nodes, GPUs per node, data-parallel size, accumulation) from the file's "# Cluster:" line."""
    matches = CLUSTER_LINE.findall((CONFIG_DIR / config).read_text())
    assert len(matches) == 1, f"{config}: needs one '# Cluster: N nodes x 8 GPUs (80 GB each) -> ...' line"
    return tuple(int(value) for value in matches[0])


def load(config: str, *others: str):
    return load_config([config, *(others or RUN_FILES)], str(CONFIG_DIR))


def test_all_four_sizes_are_there():
    assert [size_name(c) for c in SIZE_CONFIGS] == ["1.4B", "1B", "380M", "3B"]


@pytest.mark.parametrize("config", SIZE_CONFIGS)
def test_batch_arithmetic_on_the_stated_cluster(config):
    nodes, gpus_per_node, stated_dp, stated_accumulation = stated_cluster(config)
    assert gpus_per_node == 8
    args = load(config).resolve(nodes * gpus_per_node)
    training, parallel, derived = args.training, args.parallel, args.derived
    assert (
        derived.data_parallel_size
        == nodes * gpus_per_node // (parallel.model_parallel_size * parallel.pipeline_stages)
        == stated_dp
    )
    assert training.gradient_accumulation_steps == stated_accumulation
    assert training.train_batch_size == (
        training.train_micro_batch_size_per_gpu * training.gradient_accumulation_steps * derived.data_parallel_size
    )
    tokens = training.train_batch_size * args.model.seq_length
    assert abs(tokens - TOKENS_PER_BATCH[size_name(config)]) < args.model.seq_length  # within one sequence
    # The same files also resolve on one 8-GPU node (the smoke test), with the global batch kept.
    assert load(config).resolve(8).training.train_batch_size == training.train_batch_size


@pytest.mark.parametrize("config", SIZE_CONFIGS)
def test_training_recipe_of_the_spec(config):
    args = load(config).resolve(math.prod(stated_cluster(config)[:2]))
    name, optimizer, training = size_name(config), args.optimizer, args.training
    assert args.model.seq_length == 2048 and training.precision == "bfloat16"
    assert optimizer.optimizer_type == "AdamW" and optimizer.betas == (0.9, 0.95) and optimizer.eps == 1e-8
    assert optimizer.lr == PEAK_LR[name] and optimizer.min_lr == pytest.approx(0.1 * optimizer.lr)
    assert optimizer.lr_decay_style == "cosine" and optimizer.warmup == 0.01
    assert optimizer.lr_decay_iters == training.train_iters and optimizer.weight_decay == 0.1
    assert optimizer.gradient_clipping == 1.0 and optimizer.zero_stage == 1
    tokens_per_batch = training.train_batch_size * args.model.seq_length
    assert training.train_iters == math.ceil(TOKEN_BUDGET[name] / tokens_per_batch)
    assert args.model.pos_emb == "none" and args.model.norm == "rmsnorm"
    assert args.metala.metala_chunk_size == 64 and args.metala.metala_backend == "auto"
    # The per-head key width is 64 (MetaLA's head_k_dim = hidden / (2 x heads)).
    assert args.model.hidden_size // (2 * args.model.num_attention_heads) == 64
    # Data and run paths come from the other two files, so the size file combines with either local setup.
    assert args.source_of("train_data_paths").endswith("pile_data.yml")
    assert args.source_of("save").endswith("local_setup_wandb.yml")
    smoke = load(config, "local_setup.yml")
    assert smoke.source_of("save").endswith("local_setup.yml") and smoke.model == load(config).model


@pytest.mark.parametrize("config", SIZE_CONFIGS)
def test_attention_config_expands_to_num_layers_metala_layers(config):
    args = load(config)
    types = layer_types(args)
    assert len(types) == args.model.num_layers and set(types) == {"metala"}


@pytest.mark.parametrize("config", SIZE_CONFIGS)
def test_meta_device_model_has_the_size_in_its_name(config, single_rank):
    import torch

    from neox_metala.model import gpt
    from neox_metala.model.sizes import count_parameters
    from neox_metala.training.engine import block_settings

    args = load(config).resolve(math.prod(stated_cluster(config)[:2]))
    vocab = padded_vocab_size(GPT_NEOX_20B_VOCAB, args.model.make_vocab_size_divisible_by, tp=1)
    assert vocab == 50304
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with torch.device("meta"):
        model = gpt.SequentialModel(
            gpt.layer_specs(block_settings(args), layer_types(args), vocab, tied=not args.model.no_weight_tying)
        )
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    parameters = list(model.parameters())  # each shared (tied) tensor once
    assert all(p.is_meta for p in parameters) and all(b.is_meta for b in model.buffers())
    assert grown_mib < 256, f"building on the meta device raised the peak memory by {grown_mib:.0f} MiB"
    total = sum(p.numel() for p in parameters)
    assert total == count_parameters(args.model_shape(vocab))["total"]
    assert abs(total / nominal_parameters(config) - 1) < 0.05, f"{config}: {total:,} parameters"
    mixers = [module.mixer for module in model.layers if hasattr(module, "mixer")]
    assert len(mixers) == args.model.num_layers and {type(m).__name__ for m in mixers} == {"MetaLAMixer"}
    assert {m.head_k_dim for m in mixers} == {64}


# ---------------------------------------------------------------------------------------------------------------
# The launch scripts with these configs: the hostfile and Slurm scripts print the launcher command (dry run) for
# the cluster each file states. tests/config/test_deepy_launch.py covers `bash -n` and the launcher keys.
# ---------------------------------------------------------------------------------------------------------------


def run_script(script: str, configs: list[str], env: dict) -> tuple[str, list[str]]:
    environment = {**os.environ, "PYTHON": sys.executable, **env}
    result = subprocess.run(
        ["bash", str(REPO / "launch" / script), *configs],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("deepy.py: ")]
    return lines[0], lines[-1].split(" command", 1)[1].split(": ", 1)[1].split()  # launcher or rank command


def resolved_config(command: list[str]) -> dict:
    """The config train.py would receive on every rank (deepy.py's --neox-config-b64)."""
    encoded = command[command.index("--neox-config-b64") + 1]
    return json.loads(base64.urlsafe_b64decode(encoded.encode()).decode())["config"]


def check_launch(config: str, summary: str, command: list[str]) -> None:
    nodes, gpus_per_node, dp, accumulation = stated_cluster(config)
    assert f"world_size={nodes * gpus_per_node} nodes={nodes} gpus_per_node={gpus_per_node} " in summary
    assert f"data_parallel_size={dp} " in summary
    resolved = resolved_config(command)
    assert resolved["world_size"] == nodes * gpus_per_node and resolved["data_parallel_size"] == dp
    assert resolved["gradient_accumulation_steps"] == accumulation
    assert resolved["train_batch_size"] * resolved["seq_length"] == TOKENS_PER_BATCH[size_name(config)]
    assert "train.py" in command and command[-2] == "--neox-config-b64"


@pytest.mark.parametrize("config", SIZE_CONFIGS)
def test_hostfile_script_dry_run_shows_the_stated_cluster(config, tmp_path):
    nodes, gpus_per_node, _, _ = stated_cluster(config)
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("".join(f"gpu-node-{i:02d} slots={gpus_per_node}\n" for i in range(1, nodes + 1)))
    summary, command = run_script(
        "multi_node_hostfile.sh", [config, *RUN_FILES], {"HOSTFILE": str(hostfile), "DRY_RUN": "1"}
    )
    check_launch(config, summary, command)
    if nodes == 1:  # one machine: deepy.py starts the ranks itself (DeepSpeed's runner would run them locally too)
        assert command[2:4] == ["train.py", "--local_rank=N"]
        return
    assert command[command.index("--hostfile") + 1] == str(hostfile)
    assert command[command.index("--launcher") + 1] == "pdsh"


@pytest.mark.parametrize("config", SIZE_CONFIGS)
def test_slurm_script_dry_run_shows_the_stated_cluster(config, tmp_path):
    """slurm.sbatch as `sbatch --nodes=N` runs it, with a stand-in `scontrol` for the allocation's host list.
    It has no DRY_RUN switch; deepy.py's --dry-run is passed through with the config names."""
    nodes, gpus_per_node, _, _ = stated_cluster(config)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text('#!/usr/bin/env bash\n[ "$1 $2" = "show hostnames" ] && tr "," "\\n" <<< "$3"\n')
    scontrol.chmod(0o755)
    hosts = ",".join(f"gpu-node-{i:02d}" for i in range(1, nodes + 1))
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "SLURM_JOB_NODELIST": hosts,
        "SLURM_GPUS_ON_NODE": str(gpus_per_node),
        "SLURM_JOB_ID": "4242",
        "SLURM_SUBMIT_DIR": str(REPO),
        "TMPDIR": str(tmp_path),
    }
    summary, command = run_script("slurm.sbatch", [config, *RUN_FILES, "--dry-run"], env)
    check_launch(config, summary, command)
    if nodes == 1:  # a one-node allocation: deepy.py starts the node's ranks itself
        assert command[2:4] == ["train.py", "--local_rank=N"]
        return
    assert command[command.index("--launcher") + 1] == "slurm" and "--no_ssh_check" in command
    assert command[command.index("--num_gpus") + 1] == str(gpus_per_node)
    assert command[command.index("--master_addr") + 1] == "gpu-node-01"
