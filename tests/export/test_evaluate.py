"""`python -m neox_metala.evaluate` through lm-evaluation-harness on local tasks (lm-eval's own YAML with
`dataset_path: json` over jsonl written here): its scores equal a direct computation of the same log-likelihoods
with our model, and reach an offline W&B run."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from lm_eval_tasks import DOCS, assert_scores_match, direct_log_likelihood, direct_scores, write_local_tasks
from wandb_offline import read_wandb_history

pytestmark = pytest.mark.multiproc
MAX_LENGTH = 64


def test_evaluate_on_local_tasks_equals_direct_computation(checkpoints, tmp_path, single_rank):
    from neox_metala.data.tokenizers import load_tokenizer
    from neox_metala.evaluate import MetaLALM, main
    from neox_metala.training.checkpoint_files import find_step_dir, load_single_rank_model

    include_path = write_local_tasks(tmp_path)
    load_dir = str(checkpoints["metala"][0])
    step_dir = find_step_dir(load_dir)
    config = yaml.safe_load(open(f"{step_dir}/neox_config.yml"))
    config.update(
        load=load_dir, use_wandb=True, wandb_project="eval-test", wandb_run_name="tiny", log_dir=str(tmp_path / "run")
    )
    (tmp_path / "run.yml").write_text(yaml.safe_dump(config))

    arguments = ["-d", str(tmp_path), "run.yml", "--tasks", "local_mc,local_text", "--include-path", include_path]
    arguments += ["--batch-size", "4", "--max-length", str(MAX_LENGTH), "--output", str(tmp_path / "results.json")]
    assert main(arguments) == 0
    got = json.load(open(tmp_path / "results.json"))["scores"]

    model, args = load_single_rank_model(step_dir)
    tokenizer = load_tokenizer("HFTokenizer", args.data.vocab_file)
    assert_scores_match(got, direct_scores(model, tokenizer, MAX_LENGTH))
    lm = MetaLALM(model, tokenizer, max_length=MAX_LENGTH, batch_size=4)
    for doc in DOCS[:2]:  # the batched, padded forwards give each log-likelihood itself
        context = f"Question: {doc['question']}\nAnswer:"
        context_ids = tokenizer.encode(context)
        direct = [
            direct_log_likelihood(model, context_ids, tokenizer.encode(f"{context} {c}")[len(context_ids) :])
            for c in doc["choices"]
        ]
        batched = lm.loglikelihood([SimpleNamespace(args=(context, " " + c)) for c in doc["choices"]])
        np.testing.assert_allclose([score for score, _ in batched], [score for score, _ in direct], rtol=1e-5)
        assert [greedy for _, greedy in batched] == [greedy for _, greedy in direct]

    _, history = read_wandb_history(tmp_path / "run")  # waits for W&B's flush of the run's end
    logged = {key: value for row in history for key, value in row.items() if key.startswith("eval/")}
    assert logged["eval/local_mc/acc"] == got["local_mc/acc"]
    assert logged["eval/local_text/bits_per_byte"] == got["local_text/bits_per_byte"]
    assert logged["eval/local_mc/sample_len"] == len(DOCS)
    assert any(row.get("_step") == 5 for row in history), "scores are logged at the checkpoint's iteration"
