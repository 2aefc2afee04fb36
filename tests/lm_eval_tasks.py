"""Local lm-evaluation-harness tasks for the tests (lm-eval's own YAML with `dataset_path: json` over jsonl written
here: nothing is downloaded), and their scores computed directly from a model: one sequence per forward, no
batching, no padding, no lm-eval."""

from __future__ import annotations

import json
import math

import numpy as np
import torch
import torch.nn.functional as F

DOCS = [
    {"question": "Which is a color?", "choices": ["red", "table", "seven"], "label": 0},
    {"question": "What do birds do?", "choices": ["swim in soup", "fly", "read books"], "label": 1},
    {"question": "Water at 100 C will", "choices": ["freeze", "sing", "boil"], "label": 2},
    {"question": "The sun rises in the", "choices": ["east", "refrigerator", "west"], "label": 0},
    {"question": "A cat says", "choices": ["moo", "meow", "quack quack quack"], "label": 1},
    {"question": "Two plus two is", "choices": ["four", "five", "a very large number indeed"], "label": 0},
]
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Once upon a time there was a tiny model.", "Hello world"]
MC_TASK = """task: local_mc
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
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
  - {{metric: acc_norm, aggregation: mean, higher_is_better: true}}
  - {{metric: exact_match, aggregation: mean, higher_is_better: true}}
  - {{metric: brier_score, aggregation: brier_score, higher_is_better: false}}
"""
TEXT_TASK = """task: local_text
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - {{metric: bits_per_byte, aggregation: bits_per_byte, higher_is_better: false}}
"""


def write_local_tasks(root) -> str:
    """local_mc (multiple choice) and local_text (rolling perplexity) under root; returns the tasks folder."""
    (root / "local_mc.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in DOCS))
    (root / "local_text.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in TEXTS))
    (root / "tasks").mkdir()
    (root / "tasks/local_mc.yaml").write_text(MC_TASK.format(data=root / "local_mc.jsonl"))
    (root / "tasks/local_text.yaml").write_text(TEXT_TASK.format(data=root / "local_text.jsonl"))
    return str(root / "tasks")


def direct_log_likelihood(model, context_ids: list[int], continuation_ids: list[int]) -> tuple[float, bool]:
    """(log p(continuation | context), every continuation token the argmax), one unpadded sequence."""
    from neox_metala.model import gpt

    tokens = torch.tensor([context_ids + continuation_ids])
    with torch.no_grad():
        logits = model((tokens[:, :-1], gpt.no_padding_mask())).transpose(0, 1)[0]
    log_probs = F.log_softmax(logits.float(), dim=-1)[len(context_ids) - 1 :]
    target = torch.tensor(continuation_ids)
    return log_probs.gather(-1, target[:, None]).sum().item(), bool((log_probs.argmax(-1) == target).all())


def direct_scores(model, tokenizer, max_length: int, limit: int | None = None) -> dict[str, float]:
    """The local tasks' metrics as lm-eval defines them ({"local_mc/acc": ...}), from direct log-likelihoods.
    `max_length`: the evaluated model's; every sequence here must fit (lm-eval would cut or window it).
    `limit`: only the first documents of each task."""
    docs, texts = DOCS[:limit], TEXTS[:limit]
    correct, correct_norm, greedy, brier = [], [], [], []
    for doc in docs:
        context = f"Question: {doc['question']}\nAnswer:"
        context_ids = tokenizer.encode(context)
        continuations = [tokenizer.encode(f"{context} {c}")[len(context_ids) :] for c in doc["choices"]]
        assert all(len(context_ids) + len(ids) <= max_length + 1 for ids in continuations)
        scored = [direct_log_likelihood(model, context_ids, ids) for ids in continuations]
        lls = np.array([ll for ll, _ in scored])
        correct.append(float(np.argmax(lls) == doc["label"]))
        correct_norm.append(float(np.argmax(lls / np.array([len(c) for c in doc["choices"]])) == doc["label"]))
        greedy.append(float(scored[doc["label"]][1]))
        probs = np.exp(lls - lls.max()) / np.exp(lls - lls.max()).sum()
        brier.append(float(np.sum((probs - np.eye(len(lls))[doc["label"]]) ** 2)))
    text_lls = []
    for text in texts:  # shorter than max_length: one rolling window, predicted after the end-of-document token
        ids = tokenizer.encode(text)
        assert len(ids) <= max_length
        text_lls.append(direct_log_likelihood(model, [tokenizer.eod_id], ids)[0])
    return {
        "local_mc/acc": float(np.mean(correct)),
        "local_mc/acc_norm": float(np.mean(correct_norm)),
        "local_mc/exact_match": float(np.mean(greedy)),
        "local_mc/brier_score": float(np.mean(brier)),
        "local_text/bits_per_byte": -sum(text_lls) / sum(len(t.encode()) for t in texts) / math.log(2),
    }


def assert_scores_match(got: dict[str, float], expected: dict[str, float]) -> None:
    """Accuracies exactly; the scores made of log-likelihood values to float32 rounding (batched forwards)."""
    for key in ("local_mc/acc", "local_mc/acc_norm", "local_mc/exact_match"):
        assert got[key] == expected[key], (key, got[key], expected[key])
    for key in ("local_mc/brier_score", "local_text/bits_per_byte"):
        assert math.isclose(got[key], expected[key], rel_tol=1e-5), (key, got[key], expected[key])
