"""Decode throughput against context length: MetaLA on its recurrent path vs a same-size attention model with a KV
cache in transformers (Llama: RoPE, SwiGLU, SDPA), both in bf16 on one GPU.

    python bench/decode.py [--context 1024 4096 16384 32768] [--batch 1 64] [--new-tokens 128] [--eager]
                           [--out decode.json]

For each context length: prefill the context (random ids; MetaLA in chunks of --prefill-chunk tokens, which the
decode state makes exact), then time --new-tokens one-token steps (CUDA-synchronised wall clock, after warm-up
steps); report tokens/s and the peak memory of the decode phase above the weights. MetaLA's state is constant in
the context length, so its tokens/s should stay flat from 1k to 32k while the attention model's falls as its KV
cache grows. MetaLA's decode step replays a CUDA graph (model/decode.py: the eager loop is host-bound, ~40 ms per
token for the 1B model whatever the batch); `--eager` also times the eager loop on the same model, for comparison
(rows "decode": "eager"). Sizes default to the 1B config (hidden 2048, 24 layers); heads: MetaLA 16 (q/key 64, v 128 per
head), attention 16 (128 per head). Needs CUDA, fla (pip install 'neox-metala[gpu]') and transformers.
Not run on the CPU development machines (written there, to be run on an H200).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from neox_metala.generate import init_single_process  # noqa: E402
from neox_metala.layers.settings import BlockSettings  # noqa: E402
from neox_metala.model import gpt  # noqa: E402
from neox_metala.model.decode import decode_step  # noqa: E402
from neox_metala.warmup import use_kernel_cache  # noqa: E402

VOCAB = 50304


def metala_model(hidden, layers, heads, width, device):
    settings = BlockSettings(
        hidden_size=hidden,
        num_attention_heads=heads,
        num_layers=layers,
        intermediate_size=width,
        norm="rmsnorm",
        params_dtype=torch.bfloat16,
    )
    # Built where megatron-core allocates (the initialiser draws each full tensor on the CPU), then moved.
    model = gpt.SequentialModel(gpt.layer_specs(settings, ["metala"] * layers, VOCAB, tied=True))
    return model.to(device, torch.bfloat16).eval()


def llama_model(hidden, layers, heads, width, device):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=1 << 17,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    with torch.device(device):
        return LlamaForCausalLM(config).to(torch.bfloat16).eval()


class MetaLARunner:
    def __init__(self, model, prefill_chunk, cuda_graphs=True):
        self.model, self.prefill_chunk, self.cuda_graphs = model, prefill_chunk, cuda_graphs
        self.device = next(model.parameters()).device
        self.cache = self.decode = None

    def prefill(self, tokens):
        self.cache = self.model.new_cache()
        for start in range(0, tokens.shape[1], self.prefill_chunk):
            logits = self.model(
                (tokens[:, start : start + self.prefill_chunk], gpt.no_padding_mask(self.device)), cache=self.cache
            )
        self.decode = decode_step(self.model, self.cache, self.cuda_graphs)  # captured here, outside the timing
        return logits[-1].argmax(-1)

    def step(self, token):
        return self.decode(token).argmax(-1)

    def release(self):
        self.cache = self.decode = None


class LlamaRunner:
    def __init__(self, model):
        self.model = model

    def prefill(self, tokens):
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.model.config)
        out = self.model(input_ids=tokens, past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1].argmax(-1)

    def step(self, token):
        out = self.model(input_ids=token[:, None], past_key_values=self.cache, use_cache=True)
        return out.logits[:, -1].argmax(-1)

    def release(self):
        self.cache = None


@torch.no_grad()
def measure(runner, context, batch, new_tokens, warmup, device):
    cuda = torch.device(device).type == "cuda"
    tokens = torch.randint(0, VOCAB, (batch, context), device=device)
    token = runner.prefill(tokens)
    for _ in range(warmup):
        token = runner.step(token)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if cuda else 0
    start = time.perf_counter()
    for _ in range(new_tokens):
        token = runner.step(token)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    row = {"tokens_per_s": batch * new_tokens / seconds, "ms_per_step": 1000 * seconds / new_tokens}
    if cuda:  # decode-phase peak above what the weights and the prefilled state already hold
        row.update(
            decode_peak_extra_gib=(torch.cuda.max_memory_allocated() - before) / 2**30,
            held_after_prefill_gib=before / 2**30,
        )
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384, 32768])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--prefill-chunk", type=int, default=4096)
    parser.add_argument("--models", nargs="+", default=["metala", "attention"], choices=["metala", "attention"])
    parser.add_argument("--eager", action="store_true", help="also time MetaLA's eager decode loop (no CUDA graph)")
    parser.add_argument("--out", default=None, help="JSON lines, one per (model, batch, context)")
    parser.add_argument("--device", default="cuda", help="cpu only to smoke-test the script (tiny sizes)")
    options = parser.parse_args(argv)
    if options.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench/decode.py needs a CUDA GPU (or --device cpu for a smoke test)")
    init_single_process()
    if options.device == "cuda":
        use_kernel_cache(None)  # $NEOX_METALA_KERNEL_CACHE or ~/.cache/neox-metala/kernels, as training's
    shape = (options.hidden, options.layers, options.heads, options.intermediate)
    rows = []
    for name in options.models:
        model = (metala_model if name == "metala" else llama_model)(*shape, options.device)
        if name == "metala":
            runners = [("cuda_graph", MetaLARunner(model, options.prefill_chunk))]
            if options.eager:
                runners.append(("eager", MetaLARunner(model, options.prefill_chunk, cuda_graphs=False)))
        else:
            runners = [("eager", LlamaRunner(model))]
        for batch in options.batch:
            for context in options.context:
                for decode, runner in runners:
                    row = {"model": name, "decode": decode, "batch": batch, "context": context}
                    try:
                        row.update(measure(runner, context, batch, options.new_tokens, options.warmup, options.device))
                    except torch.OutOfMemoryError:  # the attention model's KV cache at long contexts and big batches
                        row["out_of_memory"] = True
                    if name == "metala" and decode == "cuda_graph":  # what ran: on CPU the eager step
                        row["graphed"] = runner.decode is not None and runner.decode.graphed
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    runner.release()
                    if options.device == "cuda":
                        torch.cuda.empty_cache()
        del model, runners
        if options.device == "cuda":
            torch.cuda.empty_cache()
    for name, decode in dict.fromkeys((r["model"], r["decode"]) for r in rows):  # flatness: longest / shortest
        for batch in options.batch:
            mine = [r for r in rows if (r["model"], r["decode"]) == (name, decode) and r["batch"] == batch]
            mine = [r for r in mine if "tokens_per_s" in r]
            if len(mine) < 2:
                continue
            print(
                f"{name} ({decode}) batch {batch}: tokens/s at {mine[-1]['context']} / at {mine[0]['context']} = "
                f"{mine[-1]['tokens_per_s'] / mine[0]['tokens_per_s']:.2f}"
            )
    speedups = {}  # (batch, context) -> graphed tokens/s over eager, with --eager
    for row in rows:
        if row["model"] == "metala" and "tokens_per_s" in row:
            speedups.setdefault((row["batch"], row["context"]), {})[row["decode"]] = row["tokens_per_s"]
    for (batch, context), rates in speedups.items():
        if len(rates) == 2:
            speedup = rates["cuda_graph"] / rates["eager"]
            print(f"metala batch {batch} context {context}: CUDA graph / eager tokens/s = {speedup:.1f}x")
    if options.out:
        with open(options.out, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
