"""Benchmark keys: lm-evaluation-harness tasks scored during training (NeoX's `eval_tasks`), and the check that
their names exist, which deepy.py (also with --dry-run) and train.py run before any GPU work."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import ConfigError, did_you_mean
from .fields import Section, SourceOf, require


@dataclass
class EvaluationConfig(Section):
    eval_tasks: list[str] | None = None
    """lm-evaluation-harness tasks (or groups) scored every `eval_interval` iterations, beside the validation
    loss, and at the end of training, e.g. [piqa, arc_easy]; logged as eval_tasks/<task>/<metric>. Log-likelihood
    tasks only (multiple choice, loglikelihood, perplexity): tasks that generate text are left to `python -m
    neox_metala.evaluate` after training. NeoX default None."""

    eval_tasks_include_path: str | None = None
    """Folder of extra lm-eval task YAMLs (lm-eval's `include_path`), e.g. local tasks with `dataset_path: json`
    for clusters without network access. Not a NeoX key."""

    eval_tasks_limit: float | None = None
    """Score only the first N documents of each task at every evaluation during training (lm-eval's `limit`; a
    value below 1 is a fraction of each task), e.g. 1000: HellaSwag's 10,042 would otherwise run in full every
    `eval_interval`. The same documents each time, so the curve compares like with like; a full score is `python
    -m neox_metala.evaluate` after training. Default None: every document. Not a NeoX key."""

    def check_values(self, source_of: SourceOf) -> None:
        for name in self.eval_tasks or []:
            require(bool(name.strip()), "eval_tasks: a task name is empty", "eval_tasks", source_of)
        require(
            self.eval_tasks_include_path is None or bool(self.eval_tasks),
            "eval_tasks_include_path is set but eval_tasks is not; list the tasks to evaluate in eval_tasks",
            "eval_tasks_include_path",
            source_of,
        )
        limit = self.eval_tasks_limit
        require(
            limit is None or bool(self.eval_tasks),
            "eval_tasks_limit is set but eval_tasks is not; list the tasks to evaluate in eval_tasks",
            "eval_tasks_limit",
            source_of,
        )
        require(
            limit is None or (limit > 0 and (limit < 1 or float(limit).is_integer())),
            f"eval_tasks_limit must be a number of documents (1, 2, ...) or a fraction below 1, got {limit!r}",
            "eval_tasks_limit",
            source_of,
        )

    def task_limit(self) -> int | float | None:
        """eval_tasks_limit as lm-eval reads it: a count as an int, a fraction as a float."""
        limit = self.eval_tasks_limit
        return None if limit is None else (int(limit) if limit >= 1 else float(limit))


def _known(manager, name: str) -> bool:
    return name in manager.all_tasks or (name.endswith((".yaml", ".yml")) and os.path.isfile(name))


def find_tasks(names: list[str], include_path: str | None = None):
    """(lm-eval TaskManager that knows the names it can, the names it does not know). Indexing lm-eval's own
    ~15k task files takes tens of seconds, so an include path that holds every name is indexed alone."""
    from lm_eval.tasks import TaskManager

    if include_path:
        local = TaskManager(include_path=include_path, include_defaults=False)
        if all(_known(local, name) for name in names):
            return local, []
    manager = TaskManager(include_path=include_path)
    return manager, [name for name in names if not _known(manager, name)]


def eval_task_manager(args):
    """The TaskManager that knows every name of `eval_tasks` (None without eval_tasks); a ConfigError naming the
    key otherwise: lm-eval missing, an include path that is no folder, or an unknown task."""
    evaluation = args.evaluation
    if not evaluation.eval_tasks:
        return None
    source = args.source_of("eval_tasks")
    try:
        import lm_eval.tasks  # noqa: F401
    except ImportError:
        raise ConfigError(
            "eval_tasks needs lm-evaluation-harness: pip install 'neox-metala[eval]', or remove eval_tasks",
            source,
            "eval_tasks",
        ) from None
    include_path = evaluation.eval_tasks_include_path
    if include_path and not os.path.isdir(include_path):
        raise ConfigError(
            f"eval_tasks_include_path: {include_path!r} is not a folder; point it at the folder of your task YAMLs",
            args.source_of("eval_tasks_include_path"),
            "eval_tasks_include_path",
        )
    manager, unknown = find_tasks(evaluation.eval_tasks, include_path)
    if unknown:
        suggestion = did_you_mean(unknown[0], manager.all_tasks)
        raise ConfigError(
            f"eval_tasks: {unknown[0]!r} is not an lm-evaluation-harness task{suggestion} (`lm-eval ls tasks` lists "
            f"them; set eval_tasks_include_path to the folder of your own task YAMLs)",
            source,
            "eval_tasks",
        )
    return manager
