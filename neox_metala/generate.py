"""Text generation from a checkpoint, on the recurrent path: a prefill, then one token at a time from each layer's
decode state (`layers.cache`), so MetaLA layers use memory that does not grow with the generated length.

    python -m neox_metala.generate -d configs tiny.yml local_setup.yml --prompt "Once upon a time"
    python -m neox_metala.generate --load checkpoints/tiny --input prompts.txt --max-new-tokens 64 --top-p 0.9

The kernels are the ops' dispatch: fla's `fused_recurrent_gla` for decode steps on a GPU in bf16, the exact
PyTorch recurrence on CPU. On a GPU a MetaLA-only model's decode step replays a CUDA graph (model/decode.py; the
same tokens as the eager loop, 12-22x its tokens/s at batch 1 on an H200); `--eager` turns that off. A checkpoint
of any TP / PP layout is merged into one process (TP=1).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import torch

from .model import gpt
from .model.decode import decode_step


def init_single_process() -> None:
    """A 1-process gloo group and TP=1 model-parallel state (the parallel layers need them even alone)."""
    from . import parallel

    os.environ.setdefault("MASTER_PORT", str(parallel.free_port()))
    parallel.initialize(tensor_parallel=1, pipeline_parallel=1, backend="gloo")


def left_padded_batch(prompts: list[list[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, mask) of shape (batch, longest prompt), prompts aligned to the right; mask False at padding."""
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    longest = max(len(p) for p in prompts)
    tokens = torch.full((len(prompts), longest), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), longest, dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        tokens[row, longest - len(prompt) :] = torch.tensor(prompt)
        mask[row, longest - len(prompt) :] = True
    return tokens.to(device), mask.to(device)


def next_tokens(logits, temperature=0.0, top_k=0, top_p=1.0, generator=None):
    """Greedy (temperature 0) or sampled ids from (batch, vocab) logits, with optional top-k / top-p filtering."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    scores = logits.float() / temperature
    if top_k:
        kth = scores.topk(min(top_k, scores.shape[-1]), dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, order = scores.sort(dim=-1, descending=True)
        cumulative = sorted_scores.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_scores.softmax(-1) > top_p  # keep the smallest set whose mass reaches top_p
        scores = scores.scatter(-1, order, sorted_scores.masked_fill(drop, float("-inf")))
    return torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(-1)


EOS_CHECK_INTERVAL = 16  # tokens between the host syncs that stop the loop once every row has ended


@torch.no_grad()
def generate_tokens(
    model: gpt.SequentialModel,
    prompts: list[list[int]],
    max_new_tokens: int,
    pad_id: int,
    eos_id: int | None = None,
    vocab_limit: int | None = None,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    cuda_graphs: bool = True,
) -> list[list[int]]:
    """New tokens per prompt (up to and including EOS). `vocab_limit`: ids at or past it (the vocab padding of the
    embedding) are never chosen. `cuda_graphs`: on a GPU, replay the decode step of a MetaLA-only model from a
    CUDA graph (model/decode.py; elsewhere, and for models with attention layers, the step runs eagerly); the
    tokens are those of the eager loop."""
    device = next(model.parameters()).device
    tokens, mask = left_padded_batch(prompts, pad_id, device)
    cache = model.new_cache()
    logits = model((tokens, mask), cache=cache)[-1]  # (batch, vocab) at the last prompt position
    step = decode_step(model, cache, cuda_graphs) if max_new_tokens > 1 else None
    # On the device, read once at the end: a per-token .tolist() would wait for the GPU after every step.
    generated = torch.full((len(prompts), max_new_tokens), pad_id, dtype=torch.long, device=device)
    finished = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    length = 0
    while length < max_new_tokens:
        if vocab_limit is not None and vocab_limit < logits.shape[-1]:
            logits[:, vocab_limit:] = float("-inf")
        chosen = next_tokens(logits, temperature, top_k, top_p, generator)
        chosen = torch.where(finished, torch.full_like(chosen, pad_id), chosen)  # ended rows are fed padding
        generated[:, length] = chosen
        length += 1
        if eos_id is not None:
            finished |= chosen == eos_id
            if length % EOS_CHECK_INTERVAL == 0 and bool(finished.all()):
                break
        if length < max_new_tokens:
            logits = step(chosen)
    return [_through_eos(row, eos_id) for row in generated[:, :length].tolist()]


def _through_eos(ids: list[int], eos_id: int | None) -> list[int]:
    """ids up to and including the first EOS: what follows it was generated only because other rows went on."""
    return ids[: ids.index(eos_id) + 1] if eos_id is not None and eos_id in ids else ids


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m neox_metala.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("conf_files", nargs="*", help="YAML config files (tokenizer, load); optional with --load")
    parser.add_argument("-d", "--conf_dir", "--conf-dir", default=None, help="directory the YAML files are in")
    parser.add_argument("--load", default=None, help="checkpoint folder (default: the config's `load`)")
    parser.add_argument("--iteration", type=int, default=None, help="step to load (default: the latest)")
    parser.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    parser.add_argument("--input", default=None, help="file with one prompt per line")
    parser.add_argument("--output", default=None, help="write JSON lines {prompt, completion} here (default stdout)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--eager",
        action="store_true",
        help="decode step by step from Python instead of replaying a CUDA graph (the GPU default for MetaLA-only "
        "models); the same tokens, slower",
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default=None,
        help="default: bfloat16 on a GPU, float32 on CPU",
    )
    return parser


def load_for_inference(conf_files, conf_dir, load, iteration, dtype_name=None):
    """(model on the best device, the config used for the tokenizer) from CLI-style arguments."""
    from .training.checkpoint_files import checkpoint_config, find_step_dir, load_single_rank_model

    user_args = None
    if conf_files:
        from .config import load_config

        user_args = load_config(conf_files, conf_dir)
    load = load or (user_args.checkpoint.load if user_args else None)
    if not load:
        raise SystemExit("no checkpoint: pass --load DIR or set `load` in the config files")
    step_dir = find_step_dir(load, iteration)
    init_single_process()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, dtype_name) if dtype_name else (torch.bfloat16 if device == "cuda" else torch.float32)
    model, saved_args = load_single_rank_model(step_dir, checkpoint_config(step_dir), dtype)
    args = user_args or saved_args
    if device == "cuda":  # the training runs' compiled and tuned kernels, not minutes of autotuning per call
        from .warmup import use_kernel_cache

        use_kernel_cache(args.training.kernel_cache_dir)
    return model.to(device), args


def main(argv=None) -> int:
    options = _parser().parse_intermixed_args(argv)
    prompts = list(options.prompt)
    if options.input:
        with open(options.input) as f:
            prompts += [line.rstrip("\n") for line in f if line.strip()]
    if not prompts:
        raise SystemExit("nothing to generate from: pass --prompt TEXT or --input FILE")
    from .data.tokenizers import load_tokenizer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")  # stderr; stdout: JSON
    model, args = load_for_inference(
        options.conf_files, options.conf_dir, options.load, options.iteration, options.dtype
    )
    tokenizer = load_tokenizer(args.data.tokenizer_type, args.data.vocab_file, args.data.merge_file)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(options.seed)
    out = open(options.output, "w") if options.output else sys.stdout
    try:
        for start in range(0, len(prompts), options.batch_size):
            batch = prompts[start : start + options.batch_size]
            completions = generate_tokens(
                model,
                tokenizer.encode_batch(batch),
                options.max_new_tokens,
                tokenizer.pad_id,
                tokenizer.eod_id,
                tokenizer.vocab_size,
                options.temperature,
                options.top_k,
                options.top_p,
                generator,
                not options.eager,
            )
            for prompt, ids in zip(batch, completions):
                print(json.dumps({"prompt": prompt, "completion": tokenizer.decode(ids)}), file=out, flush=True)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
