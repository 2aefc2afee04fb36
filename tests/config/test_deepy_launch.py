"""deepy.py and the launch scripts: world size from the launcher keys, the DeepSpeed runner command, train.py's
arguments, and one real 2-process launch on CPU through DeepSpeed's runner."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from neox_metala.config import ConfigError, load_config
from neox_metala.launch.command import launch_environment, runner_command
from neox_metala.launch.deepy import deepy_main, local_ranks
from neox_metala.launch.resources import plan_resources
from neox_metala.launch.train_args import encode_config, parse_train_args, slurm_rank_environment
from neox_metala.parallel import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
HOSTFILE_2x8 = "node-a slots=8\nnode-b slots=8\n"


def dry_run(capsys, *paths) -> tuple[str, list[str]]:
    """deepy.py --dry-run in-process (with data settings, which train.py needs): (summary line, command words)."""
    data = pathlib.Path(paths[0]).with_name("data.yml")
    data.write_text("train_data_paths: [corpus/train]\nvocab_file: tokenizer.json\n")
    assert deepy_main(["train.py", *paths, str(data), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    command = lines[-1].split(" command", 1)[1].split(": ", 1)[1].split()
    return lines[0], command


def option(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def test_dry_run_reports_config_only_mistakes(capsys, tiny_yaml, write_yaml):
    """What train.py would refuse from the config alone, deepy.py refuses before launching (--dry-run too)."""
    assert deepy_main(["train.py", tiny_yaml, "--dry-run"]) == 2
    assert "no training data: set data_path (with split) or train_data_paths" in capsys.readouterr().err
    valid_only = write_yaml("valid.yml", "valid_data_paths: [corpus/valid]\n")
    assert deepy_main(["train.py", tiny_yaml, valid_only, "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert f"error: {valid_only}: no training data (valid_data_paths from {valid_only} without it)" in error
    no_vocab = write_yaml("data.yml", "train_data_paths: [corpus/train]\n")
    assert deepy_main(["train.py", tiny_yaml, no_vocab, "--dry-run"]) == 2
    assert "vocab_file is required for tokenizer_type 'HFTokenizer'" in capsys.readouterr().err


def test_dry_run_checks_the_eval_tasks_names(capsys, tiny_yaml, write_yaml, tmp_path):
    """An unknown lm-eval task is refused before launching, naming the key and the fix; known ones pass (a local
    task folder holding every name is all that is indexed)."""
    from lm_eval_tasks import write_local_tasks

    include_path = write_local_tasks(tmp_path)
    data = write_yaml("data.yml", "train_data_paths: [corpus/train]\nvocab_file: tokenizer.json\n")
    tasks = write_yaml("tasks.yml", f"eval_tasks: [local_mc, local_text]\neval_tasks_include_path: {include_path}\n")
    assert deepy_main(["train.py", tiny_yaml, data, tasks, "--dry-run"]) == 0
    capsys.readouterr()
    tasks = write_yaml("tasks.yml", f"eval_tasks: [local_mc, local_mcq]\neval_tasks_include_path: {include_path}\n")
    assert deepy_main(["train.py", tiny_yaml, data, tasks, "--dry-run"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        f"deepy.py: error: {tasks}: eval_tasks: 'local_mcq' is not an lm-evaluation-harness task; did you mean "
        f"'local_mc'? (`lm-eval ls tasks` lists them; set eval_tasks_include_path to the folder of your own task YAMLs)"
    )
    tasks = write_yaml("tasks.yml", f"eval_tasks: [local_mc]\neval_tasks_include_path: {tmp_path / 'none'}\n")
    assert deepy_main(["train.py", tiny_yaml, data, tasks, "--dry-run"]) == 2
    assert f"eval_tasks_include_path: '{tmp_path / 'none'}' is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["single_node.sh", "multi_node_hostfile.sh", "slurm.sbatch"])
def test_launch_scripts_parse(script):
    subprocess.run(["bash", "-n", str(REPO / "launch" / script)], check=True)


@pytest.mark.parametrize(
    "launch_keys, world, per_node, nodes",
    [
        ("", 16, "gpus_per_node=8", 2),
        ('include: "node-a@node-b:0,1"\n', 10, "gpus_per_node=8/2", 2),
        ('exclude: "node-b"\n', 8, "gpus_per_node=8", 1),
        ("num_nodes: 1\nnum_gpus: 4\n", 4, "gpus_per_node=4", 1),
    ],
)
def test_dry_run_with_a_two_node_hostfile(capsys, tiny_yaml, write_yaml, launch_keys, world, per_node, nodes):
    hostfile = write_yaml("hostfile", HOSTFILE_2x8)
    launch = write_yaml("launch.yml", f"hostfile: {hostfile}\n" + launch_keys)
    summary, command = dry_run(capsys, tiny_yaml, launch)
    assert f"world_size={world} " in summary and f"nodes={nodes} " in summary and per_node in summary
    assert f"data_parallel_size={world}" in summary and f"train_batch_size={2 * 2 * world}" in summary
    if nodes == 1:  # one machine: deepy.py starts the ranks itself, as DeepSpeed's runner would run them locally
        assert command[1:4] == ["-u", "train.py", "--local_rank=N"] and command[-2] == "--neox-config-b64"
        return
    assert command[1:4] == ["-u", "-m", "neox_metala.launch.pdsh_runner"]  # DeepSpeed's, with our node launcher
    assert option(command, "--hostfile") == hostfile and option(command, "--launcher") == "pdsh"
    assert command[-3:-1] == ["train.py", "--neox-config-b64"]
    for key in ("include", "exclude", "num_nodes", "num_gpus"):
        value = load_config([tiny_yaml, launch]).launcher.__dict__[key]
        assert option(command, f"--{key}") == (None if value in (None, -1) else str(value))


def test_our_host_selection_matches_deepspeeds(tiny_yaml, write_yaml):
    from deepspeed.launcher import runner  # imports DeepSpeed: a few seconds

    hostfile = write_yaml("hostfile", HOSTFILE_2x8)
    cases = [
        {},
        {"include": "node-b@node-a:3,1"},
        {"exclude": "node-a:0,7@node-b"},
        {"num_nodes": 1},
        {"num_gpus": 2},
        {"include": "node-a:1,1,2"},
    ]
    for keys in cases:
        launch = write_yaml("launch.yml", f"hostfile: {hostfile}\n" + "".join(f"{k}: {v!r}\n" for k, v in keys.items()))
        args = load_config([tiny_yaml, launch])
        ours = plan_resources(args.launcher, args.source_of).hosts
        pool = runner.fetch_hostfile(hostfile)
        theirs = runner.parse_inclusion_exclusion(pool, keys.get("include", ""), keys.get("exclude", ""))
        theirs = runner.apply_num_nodes_and_gpus(theirs, keys.get("num_nodes", -1), keys.get("num_gpus", -1))
        assert list(ours.items()) == list(theirs.items()), keys


@pytest.mark.parametrize(
    "launch_keys, fragment",
    [
        ('include: "node-c"\n', "include: host 'node-c' is not in the hostfile"),
        ('include: "node-a:9"\n', "has no slot 9"),
        ("num_nodes: 3\n", "num_nodes is 3 but only 2 host(s)"),
        ("num_gpus: 9\n", "num_gpus is 9 but host 'node-a' has 8"),
        ('include: "node-a"\nnum_gpus: 2\n', "num_gpus cannot be combined with include"),
    ],
)
def test_launcher_mistakes_are_config_errors(tiny_yaml, write_yaml, launch_keys, fragment):
    hostfile = write_yaml("hostfile", HOSTFILE_2x8)
    launch = write_yaml("launch.yml", f"hostfile: {hostfile}\n" + launch_keys)
    with pytest.raises(ConfigError) as caught:
        args = load_config([tiny_yaml, launch])
        plan_resources(args.launcher, args.source_of)
    assert fragment in str(caught.value) and str(caught.value).startswith(launch)


def test_missing_hostfile_is_an_error_not_a_silent_single_node_run(tiny_yaml, write_yaml, tmp_path):
    launch = write_yaml("launch.yml", f"hostfile: {tmp_path / 'nope'}\n")
    args = load_config([tiny_yaml, launch])
    with pytest.raises(ConfigError, match="hostfile: .* does not exist"):
        plan_resources(args.launcher, args.source_of)


def test_slurm_command_and_environment(tiny_yaml, write_yaml):
    hostfile = write_yaml("hostfile", HOSTFILE_2x8)
    launch = write_yaml(
        "launch.yml",
        f"hostfile: {hostfile}\ndeepspeed_slurm: true\nnum_gpus: 8\ncomment: 'project x'\nmaster_port: 29555\n",
    )
    args = load_config([tiny_yaml, launch])
    assert args.launcher.launcher == "slurm"  # implied by deepspeed_slurm
    resources = plan_resources(args.launcher, args.source_of)
    command = runner_command(args.resolve(resources.world_size), resources, "train.py")
    assert command[1:4] == ["-u", "-m", "deepspeed.launcher.runner"]  # srun starts the ranks: no node launcher
    assert option(command, "--launcher") == "slurm" and "--no_ssh_check" in command
    assert option(command, "--master_addr") == "node-a" and option(command, "--num_gpus") == "8"
    assert option(command, "--launcher_args") == "--comment='project x'"
    env = launch_environment(args, resources, {})
    assert env == {"MASTER_ADDR": "node-a", "MASTER_PORT": "29555"}


def test_cpu_run_without_gpus(tiny_yaml, write_yaml):
    launch = write_yaml("launch.yml", "num_gpus: 2\n")
    args = load_config([tiny_yaml, launch])
    resources = plan_resources(args.launcher, args.source_of, local_gpu_count=lambda: 0)
    assert resources.use_cpu and resources.world_size == 2 and resources.hostfile is None
    ranks = local_ranks(args.resolve(2), resources, "train.py")
    assert ranks.world_size == 2 and ranks.gpu_slots is None
    assert ranks.rank_command(1)[2:4] == ["train.py", "--local_rank=1"]
    assert ranks.rank_environment(1, {})["RANK"] == "1" and ranks.rank_environment(1, {})["WORLD_SIZE"] == "2"
    assert launch_environment(args, resources, {})["DS_ACCELERATOR"] == "cpu"


def test_parse_train_args_from_deepy_and_from_files(tiny_yaml, tmp_path):
    resolved = load_config([tiny_yaml]).resolve(world_size=2)
    argv = ["--local_rank=1", "--neox-config-b64", encode_config(resolved)]
    assert parse_train_args(argv, environ={"WORLD_SIZE": "2"}) == resolved
    with pytest.raises(SystemExit, match="resolved for world_size 2 but 4 processes"):
        parse_train_args(argv, environ={"WORLD_SIZE": "4"})
    from_files = parse_train_args(["-d", str(tmp_path), "tiny.yml", "--local_rank=0"], environ={"WORLD_SIZE": "2"})
    assert from_files == resolved
    with pytest.raises(SystemExit):
        parse_train_args([], environ={})


def test_slurm_ranks_take_srun_variables():
    environ = {"SLURM_PROCID": "11", "SLURM_LOCALID": "3", "SLURM_NTASKS": "16", "MASTER_ADDR": "node-a"}
    assert slurm_rank_environment(environ, 29500) == {
        "RANK": "11",
        "LOCAL_RANK": "3",
        "WORLD_SIZE": "16",
        "MASTER_PORT": "29500",
    }
    assert slurm_rank_environment({**environ, "RANK": "11"}, 29500) == {}  # a launcher already set it


@pytest.mark.multiproc
def test_deepy_starts_two_cpu_ranks(tiny_yaml, write_yaml, tmp_path):
    write_yaml("local.yml", f"num_gpus: 2\nmaster_port: {free_port()}\n")
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "deepy.py", "tests/config/print_rank.py", "-d", str(tmp_path), "tiny.yml", "local.yml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reports = [
        json.loads(line.split("RANK_REPORT ", 1)[1])
        for line in result.stdout.splitlines()
        if line.startswith("RANK_REPORT ")
    ]
    assert sorted(r["rank"] for r in reports) == [0, 1]
    for report in reports:
        assert report["world_size"] == 2 and report["all_reduce"] == 1 + 2
        assert report["ds_accelerator"] == "cpu" and report["hidden_size"] == 64
        assert report["data_parallel_size"] == 2 and report["train_batch_size"] == 8
