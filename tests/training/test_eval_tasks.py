"""`eval_tasks` during training: the real trainer in 2 gloo processes (data-parallel, pipeline, tensor-parallel)
scores local lm-eval tasks every `eval_interval` and at the end of training; the logged scores equal a direct,
single-process computation with the weights saved at the same iterations, and reach metrics.jsonl and W&B."""

import pytest

from dist_helpers import run_workers
from lm_eval_tasks import assert_scores_match, direct_scores, write_local_tasks
from runtime_helpers import SMALL_MODEL, metrics, sample_data_settings, setup_yaml, train_worker, write_configs
from wandb_offline import read_wandb_history

pytestmark = pytest.mark.multiproc
TASKS = ["local_mc", "local_text"]


def logged_scores(records, iteration) -> dict[str, float]:
    prefix = "eval_tasks/"
    return {
        key.removeprefix(prefix): value
        for record in records
        if record.get("iteration", record.get("_step")) == iteration
        for key, value in record.items()
        if key.startswith(prefix)
    }


@pytest.mark.parametrize(
    "parallel",
    [
        pytest.param({"pipe_parallel_size": 0}, id="dp2"),
        pytest.param({"pipe_parallel_size": 2}, id="pp2"),
        pytest.param({"pipe_parallel_size": 0, "model_parallel_size": 2}, id="tp2"),
    ],
)
def test_eval_tasks_during_training_equal_direct_computation(tmp_path, sample_data, single_rank, parallel):
    from neox_metala.data.tokenizers import load_tokenizer
    from neox_metala.training.checkpoint_files import load_single_rank_model

    include_path = write_local_tasks(tmp_path)
    model = {**SMALL_MODEL, **parallel, "train_iters": 5, "eval_interval": 4, "checkpoint_factor": 4}
    tasks = {"eval_tasks": TASKS, "eval_tasks_include_path": include_path}
    wandb = {"use_wandb": True, "wandb_project": "eval-tasks-test"}
    files = write_configs(
        tmp_path / "configs",
        model=model,
        data=sample_data_settings(sample_data),
        tasks=tasks,
        setup={**setup_yaml(tmp_path, "run"), **wandb},
    )
    environ = {"HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets")}
    codes = run_workers(
        train_worker, 2, tmp_path / "ranks", argv=["-d", str(tmp_path / "configs"), *files], environ=environ
    )
    assert codes == [0, 0]

    records = metrics(tmp_path / "run/run")
    assert sorted({r["iteration"] for r in records if any(k.startswith("eval_tasks/") for k in r)}) == [4, 5]
    _, wandb_rows = read_wandb_history(tmp_path / "run/run")
    tokenizer = load_tokenizer(sample_data["tokenizer_type"], sample_data["vocab_file"])
    expected = {}
    for iteration in (4, 5):  # every eval_interval, and the end of training
        weights, args = load_single_rank_model(str(tmp_path / f"run/ckpt/global_step{iteration}"))
        expected[iteration] = direct_scores(weights, tokenizer, args.model.max_position_embeddings)
        assert_scores_match(logged_scores(records, iteration), expected[iteration])
        assert logged_scores(wandb_rows, iteration) == logged_scores(records, iteration)
    assert expected[4]["local_text/bits_per_byte"] != expected[5]["local_text/bits_per_byte"]  # it trained on


def one_rank_args(sample_data, include_path, tasks, **extra):
    from neox_metala.config import NeoXArgs

    values = {**SMALL_MODEL, **sample_data_settings(sample_data), "train_iters": 2, **extra}
    return NeoXArgs.from_flat({**values, "eval_tasks": tasks, "eval_tasks_include_path": include_path}, {}).resolve(1)


@pytest.mark.parametrize("limit", [None, 2], ids=["every-document", "eval_tasks_limit-2"])
def test_scoring_on_the_engine_leaves_training_alone(tmp_path, sample_data, single_rank, limit):
    """On a 1-rank engine (in this process): the scores are the direct computation's (over the first `limit`
    documents of each task with eval_tasks_limit), the random streams and the training mode are as before
    (lm-eval seeds the global generators; dropout must draw on as if nothing ran)."""
    import random

    import torch

    from neox_metala import parallel
    from neox_metala.config.evaluation import eval_task_manager
    from neox_metala.data.tokenizers import load_tokenizer
    from neox_metala.training.engine import build_model, initialize_engine
    from neox_metala.training.eval_tasks import TaskEvaluation

    args = one_rank_args(sample_data, write_local_tasks(tmp_path), TASKS, eval_tasks_limit=limit)
    tokenizer = load_tokenizer(args.data.tokenizer_type, args.data.vocab_file)
    evaluation = TaskEvaluation(args, tokenizer, eval_task_manager(args))
    engine = initialize_engine(args, build_model(args, parallel.initialize(1, 1), 8192))
    torch.manual_seed(7)
    random.seed(7)
    got = evaluation.run(engine)
    drawn = (torch.rand(3).tolist(), random.random())
    torch.manual_seed(7)
    random.seed(7)
    assert drawn == (torch.rand(3).tolist(), random.random())
    assert engine.module.training
    expected = direct_scores(engine.module.eval(), tokenizer, args.model.max_position_embeddings, limit)
    assert_scores_match(got, expected)
    if limit:  # a limit that is not applied gives the full tasks' scores
        everything = direct_scores(engine.module, tokenizer, args.model.max_position_embeddings)
        assert everything["local_text/bits_per_byte"] != expected["local_text/bits_per_byte"]


def test_tasks_that_generate_text_are_refused_at_start(tmp_path, sample_data, single_rank):
    from neox_metala.config import ConfigError
    from neox_metala.config.evaluation import eval_task_manager
    from neox_metala.data.tokenizers import load_tokenizer
    from neox_metala.training.eval_tasks import TaskEvaluation

    include_path = write_local_tasks(tmp_path)
    generating = (tmp_path / "tasks/local_mc.yaml").read_text().replace("local_mc", "local_gen", 1)
    generating = generating.replace("output_type: multiple_choice", "output_type: generate_until")
    (tmp_path / "tasks/local_gen.yaml").write_text(generating.split("metric_list:")[0])
    args = one_rank_args(sample_data, include_path, ["local_mc", "local_gen"])
    with pytest.raises(ConfigError, match="eval_tasks: 'local_gen' generates text .* python -m neox_metala.evaluate"):
        TaskEvaluation(args, load_tokenizer(args.data.tokenizer_type, args.data.vocab_file), eval_task_manager(args))
