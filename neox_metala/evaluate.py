"""Benchmarks through lm-evaluation-harness's Python API, with our model and our tokenizer.

    python -m neox_metala.evaluate -d configs metala-1B.yml local_setup.yml \
        --tasks boolq,piqa,hellaswag,winogrande,arc_easy,arc_challenge,openbookqa

The paper reports acc, and acc_norm for HellaSwag, ARC-c and OpenBookQA (spec §9); both are printed. lm-eval
downloads task data from the Hub; `--include-path DIR` adds local task YAMLs (e.g. `dataset_path: json`).
With `use_wandb: true` in the config the scores are logged to W&B (run `<wandb_run_name>-eval`, step = the
checkpoint's iteration).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .harness import LogLikelihoodLM, continuation_scores, run_tasks, scores
from .model import gpt

logger = logging.getLogger("neox_metala.evaluate")
PAPER_METRICS = {"hellaswag": "acc_norm", "arc_challenge": "acc_norm", "openbookqa": "acc_norm"}  # else acc


class MetaLALM(LogLikelihoodLM):
    """lm-eval's `LM` over a single-process model of ours: batched log-likelihoods from full forward passes."""

    def __init__(self, model: gpt.SequentialModel, tokenizer, max_length: int, batch_size: int = 16):
        super().__init__(tokenizer, max_length, batch_size)
        self.model = model
        self._device = next(model.parameters()).device

    def _batch_scores(self, tokens, lengths, continuations):
        logits = self.model((tokens.to(self._device), gpt.no_padding_mask(self._device))).transpose(0, 1)
        return continuation_scores(logits, lengths, continuations)

    def generate_until(self, requests):
        from .generate import generate_tokens

        outputs = []
        for request in requests:
            context, options = request.args
            until = options.get("until") or []
            until = [until] if isinstance(until, str) else until
            ids = generate_tokens(
                self.model,
                [self.tokenizer.encode(context)[-self.max_length :]],
                options.get("max_gen_toks", 256),
                self.tokenizer.pad_id,
                self.tokenizer.eod_id,
                self.tokenizer.vocab_size,
            )[0]
            text = self.tokenizer.decode([i for i in ids if i != self.tokenizer.eod_id])
            for stop in until:
                text = text.split(stop)[0]
            outputs.append(text)
        return outputs


def log_to_wandb(flat_scores: dict[str, float], args, iteration: int) -> None:
    import wandb

    cfg = args.logging
    run = wandb.init(
        project=cfg.wandb_project,
        group=cfg.wandb_group,
        entity=cfg.wandb_team,
        name=f"{cfg.wandb_run_name or 'neox-metala'}-eval",
        dir=cfg.log_dir,
        config=args.to_dict(),
        job_type="eval",
    )
    run.log({f"eval/{key}": value for key, value in flat_scores.items()}, step=iteration)
    run.finish()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m neox_metala.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("conf_files", nargs="*", help="YAML config files (tokenizer, load, W&B)")
    parser.add_argument("-d", "--conf_dir", "--conf-dir", default=None)
    parser.add_argument("--tasks", required=True, help="comma-separated lm-eval task names")
    parser.add_argument("--load", default=None, help="checkpoint folder (default: the config's `load`)")
    parser.add_argument("--iteration", type=int, default=None)
    parser.add_argument("--include-path", default=None, help="folder of extra lm-eval task YAMLs")
    parser.add_argument("--num-fewshot", type=int, default=None)
    parser.add_argument("--limit", type=float, default=None, help="documents per task (testing only)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="default: the config's max_position_embeddings (seq_length unless set)",
    )
    parser.add_argument("--output", default=None, help="write lm-eval's results JSON here")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None)
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options = _parser().parse_intermixed_args(argv)
    from .config.evaluation import find_tasks
    from .data.tokenizers import load_tokenizer
    from .generate import load_for_inference

    tasks = options.tasks.split(",")
    task_manager, unknown = find_tasks(tasks, options.include_path)  # before the model: a typo fails at once
    if unknown:
        raise SystemExit(
            f"--tasks: {unknown[0]!r} is not an lm-evaluation-harness task (`lm-eval ls tasks` lists them; "
            f"--include-path DIR adds a folder of local task YAMLs)"
        )

    model, args = load_for_inference(
        options.conf_files, options.conf_dir, options.load, options.iteration, options.dtype
    )
    tokenizer = load_tokenizer(args.data.tokenizer_type, args.data.vocab_file, args.data.merge_file)
    lm = MetaLALM(model, tokenizer, options.max_length or args.model.max_position_embeddings, options.batch_size)
    results = run_tasks(lm, tasks, task_manager, options.num_fewshot, options.limit)
    flat = scores(results)
    for task in results["results"]:
        paper = PAPER_METRICS.get(task, "acc")
        shown = {k.split("/")[1]: round(v, 4) for k, v in flat.items() if k.startswith(f"{task}/")}
        print(f"{task}: {shown} (paper reports {paper})")
    if options.output:
        with open(options.output, "w") as f:
            json.dump({"results": results["results"], "scores": flat}, f, indent=1, default=str)
    if args.logging.use_wandb:
        import os

        from .training.checkpoint import STEP_DIR
        from .training.checkpoint_files import find_step_dir

        step_dir = find_step_dir(options.load or args.checkpoint.load, options.iteration)
        log_to_wandb(flat, args, int(STEP_DIR.match(os.path.basename(step_dir)).group(1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
