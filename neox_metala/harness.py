"""lm-evaluation-harness's `LM` interface over our model: the one place where log-likelihoods are computed.

`LogLikelihoodLM` turns lm-eval's requests into right-padded token batches and scores continuations from the
logits a subclass's `_batch_scores` produces: `evaluate.MetaLALM` runs one process's model (the `python -m
neox_metala.evaluate` CLI), `training.eval_tasks.EngineLM` the training engine on every rank (`eval_tasks`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _lm_base():
    try:
        from lm_eval.api.model import LM
    except ImportError:
        raise SystemExit("evaluation needs lm-evaluation-harness: pip install 'neox-metala[eval]'") from None
    return LM


def continuation_scores(logits, lengths: list[int], continuations: list[list[int]]) -> list[tuple[float, bool]]:
    """(sum of log p(continuation | context), continuation is the greedy choice) per row.

    logits: (batch, seq, vocab) over the whole (padded) vocabulary, as the HF export's softmax; row r holds
    context + continuation minus the last token in its first lengths[r] positions."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    results = []
    for row, (end, continuation) in enumerate(zip(lengths, continuations)):
        target = torch.tensor(continuation, device=log_probs.device)
        scores = log_probs[row, end - len(continuation) : end]  # (len(continuation), vocab)
        total = scores.gather(-1, target[:, None]).sum().item()
        results.append((total, bool((scores.argmax(-1) == target).all())))
    return results


class LogLikelihoodLM(_lm_base()):
    """lm-eval's `LM` for log-likelihood requests (multiple choice, loglikelihood, perplexity). Subclasses give
    `_batch_scores(tokens, lengths, continuations)`: `continuation_scores` of one right-padded batch."""

    def __init__(self, tokenizer, max_length: int, batch_size: int):
        super().__init__()
        self.tokenizer, self.max_length, self.batch_size = tokenizer, max_length, batch_size

    def _batch_scores(self, tokens: torch.Tensor, lengths: list[int], continuations: list[list[int]]):
        raise NotImplementedError

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """As lm-eval's HF model: trailing spaces move to the continuation, and the continuation's tokens are
        those of context + continuation past the context's, so merges across the boundary are scored."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        if not context:
            return [self.tokenizer.eod_id], self.tokenizer.encode(continuation)
        whole, context_ids = self.tokenizer.encode(context + continuation), self.tokenizer.encode(context)
        return context_ids, whole[len(context_ids) :]

    @torch.no_grad()
    def _score(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """`continuation_scores` per (context, continuation) pair, longest first in batches of `batch_size`.

        Sequences are padded on the right: causal layers never see what follows a position, so no mask."""
        order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            rows = [(pairs[i][0] + pairs[i][1])[-(self.max_length + 1) :][:-1] for i in batch]
            tokens = torch.full((len(rows), max(map(len, rows))), self.tokenizer.pad_id, dtype=torch.long)
            for r, row in enumerate(rows):
                tokens[r, : len(row)] = torch.tensor(row)
            scored = self._batch_scores(tokens, [len(row) for row in rows], [pairs[i][1] for i in batch])
            for i, result in zip(batch, scored):
                results[i] = result
        return results

    def loglikelihood(self, requests):
        return self._score([self._encode_pair(*request.args) for request in requests])

    def loglikelihood_rolling(self, requests):
        """Each text in windows of max_length tokens, every token predicted once (lm-eval's rolling windows);
        the windows of all requests are scored together."""
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        windows, owners = [], []
        for number, request in enumerate(requests):
            for window in get_rolling_token_windows(
                self.tokenizer.encode(request.args[0]), self.tokenizer.eod_id, self.max_length, 1
            ):
                windows.append(make_disjoint_window(window))
                owners.append(number)
        totals = [0.0] * len(requests)
        for owner, (score, _) in zip(owners, self._score(windows)):
            totals[owner] += score
        return totals

    def generate_until(self, requests):
        raise NotImplementedError(f"{type(self).__name__} scores log-likelihoods only; it does not generate text")


def run_tasks(lm: LogLikelihoodLM, tasks: list[str], task_manager=None, num_fewshot=None, limit=None) -> dict:
    """lm-eval's results dict ({"results": {task: {"acc,none": ...}}, ...}); `task_manager` from
    `config.evaluation.find_tasks` (None: lm-eval's bundled tasks)."""
    from lm_eval import simple_evaluate

    return simple_evaluate(
        model=lm,
        tasks=tasks,
        num_fewshot=num_fewshot,
        limit=limit,
        task_manager=task_manager,
        log_samples=False,
        bootstrap_iters=0,
    )


def scores(results: dict) -> dict[str, float]:
    """{"task/metric": value} of every numeric metric (filter suffix ",none" dropped)."""
    flat = {}
    for task, metrics in results["results"].items():
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and "_stderr" not in name and name != "alias":
                flat[f"{task}/{name.split(',')[0]}"] = float(value)
    return flat
