"""`python -m neox_metala.evaluate` through lm-evaluation-harness on a local task (lm-eval's own YAML with
`dataset_path: json` over jsonl written here): its accuracies equal a direct computation of the same
log-likelihoods with our model, and the scores reach an offline W&B run."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

pytestmark = pytest.mark.multiproc

DOCS = [
    {"question": "Which is a color?", "choices": ["red", "table", "seven"], "label": 0},
    {"question": "What do birds do?", "choices": ["swim in soup", "fly", "read books"], "label": 1},
    {"question": "Water at 100 C will", "choices": ["freeze", "sing", "boil"], "label": 2},
    {"question": "The sun rises in the", "choices": ["east", "refrigerator", "west"], "label": 0},
    {"question": "A cat says", "choices": ["moo", "meow", "quack quack quack"], "label": 1},
    {"question": "Two plus two is", "choices": ["four", "five", "a very large number indeed"], "label": 0},
]
TASK = """task: local_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def direct_log_likelihood(model, tokenizer, context, continuation):
    """log p(continuation | context), one sequence, no batching, no padding."""
    from neox_metala.model import gpt

    context_ids = tokenizer.encode(context)
    continuation_ids = tokenizer.encode(context + continuation)[len(context_ids) :]
    tokens = torch.tensor([context_ids + continuation_ids])
    with torch.no_grad():
        logits = model((tokens[:, :-1], gpt.no_padding_mask())).transpose(0, 1)[0]
    log_probs = F.log_softmax(logits.float(), dim=-1)[len(context_ids) - 1 :]
    return log_probs.gather(-1, torch.tensor(continuation_ids)[:, None]).sum().item()


def wandb_history(log_dir):
    from neox_metala.training.wandb_sink import read_transaction_log

    rows = []
    for log_file in log_dir.glob("wandb/offline-run-*/*.wandb"):
        for record in read_transaction_log(log_file):
            if record.HasField("history"):
                rows.append(
                    {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
                )
    return rows


def test_evaluate_on_a_local_task_equals_direct_computation(checkpoints, tmp_path, single_rank):
    from neox_metala.data.tokenizers import load_tokenizer
    from neox_metala.evaluate import MetaLALM, main
    from neox_metala.training.checkpoint_files import find_step_dir, load_single_rank_model

    data = tmp_path / "local_mc.jsonl"
    data.write_text("".join(json.dumps(doc) + "\n" for doc in DOCS))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks/local_mc.yaml").write_text(TASK.format(data=data))
    load_dir = str(checkpoints["metala"][0])
    step_dir = find_step_dir(load_dir)
    config = yaml.safe_load(open(f"{step_dir}/neox_config.yml"))
    config.update(
        load=load_dir, use_wandb=True, wandb_project="eval-test", wandb_run_name="tiny", log_dir=str(tmp_path / "run")
    )
    (tmp_path / "run.yml").write_text(yaml.safe_dump(config))

    assert (
        main(
            [
                "-d",
                str(tmp_path),
                "run.yml",
                "--tasks",
                "local_mc",
                "--include-path",
                str(tmp_path / "tasks"),
                "--batch-size",
                "4",
                "--output",
                str(tmp_path / "results.json"),
            ]
        )
        == 0
    )
    got = json.load(open(tmp_path / "results.json"))["scores"]

    model, args = load_single_rank_model(step_dir)
    tokenizer = load_tokenizer("HFTokenizer", args.data.vocab_file)
    lm = MetaLALM(model, tokenizer, max_length=64, batch_size=4)
    correct, correct_norm = [], []
    for doc in DOCS:
        context = f"Question: {doc['question']}\nAnswer:"
        lls = np.array([direct_log_likelihood(model, tokenizer, context, " " + c) for c in doc["choices"]])
        batched = lm.loglikelihood([SimpleNamespace(args=(context, " " + c)) for c in doc["choices"]])
        np.testing.assert_allclose([score for score, _ in batched], lls, rtol=1e-5)
        correct.append(float(np.argmax(lls) == doc["label"]))
        correct_norm.append(float(np.argmax(lls / np.array([len(c) for c in doc["choices"]])) == doc["label"]))
    assert got["local_mc/acc"] == np.mean(correct)
    assert got["local_mc/acc_norm"] == np.mean(correct_norm)

    history = wandb_history(tmp_path / "run")
    logged = {key: value for row in history for key, value in row.items() if key.startswith("eval/")}
    assert logged["eval/local_mc/acc"] == got["local_mc/acc"]
    assert logged["eval/local_mc/acc_norm"] == got["local_mc/acc_norm"]
    assert logged["eval/local_mc/sample_len"] == len(DOCS)
    assert any(row.get("_step") == 5 for row in history), "scores are logged at the checkpoint's iteration"
