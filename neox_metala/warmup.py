"""Compiled GPU kernels: one persistent cache for every run, filled once per node, and a command to fill it ahead.

    python -m neox_metala.warmup -d configs metala-380M.yml local_setup.yml

MetaLA's Triton kernels (fla's chunk_gla and causal conv, and the torch.compile'd steps of the fused path) are
compiled and autotuned on first use: minutes per process on a fresh machine, on every rank at once. So:

* `use_kernel_cache` points Triton (compiled kernels, and fla's autotuning results: fla caches them by default,
  FLA_CACHE_RESULTS) and torch.compile (TORCHINDUCTOR_CACHE_DIR) at one folder that outlives the run:
  `kernel_cache_dir`, else $NEOX_METALA_KERNEL_CACHE, else ~/.cache/neox-metala/kernels. TRITON_CACHE_DIR and
  TORCHINDUCTOR_CACHE_DIR already set in the environment are left as they are.
* `warm_up_node` runs one MetaLA layer's kernels forward and backward at exactly this rank's shapes on local
  rank 0 of every node while the other ranks wait, so they load the result instead of all compiling at once.
* the command does the same on one GPU before a big job starts.

A cold warm-up first compiles every autotuning candidate of every kernel in parallel processes (hundreds of
candidates, each a few CPU-seconds of compilation, serial inside one process), each a share of the candidates;
the one timing run that follows then only loads them. A marker per (shapes, versions, GPU) in the cache folder
says a warm-up completed, so a warm start skips the parallel step.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import torch

from . import ops
from .config import ConfigError, NeoXArgs, layer_types, load_config
from .ops.options import MetaLAOptions

DEFAULT_FOLDER = "~/.cache/neox-metala/kernels"
FOLDER_VARIABLE = "NEOX_METALA_KERNEL_CACHE"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bfloat16": torch.bfloat16}
MAX_COMPILE_PROCESSES = 16
_SHARE_FLAG = "--compile-share"
logger = logging.getLogger(__name__)


def use_kernel_cache(configured: str | None) -> str:
    """Make the kernel cache folder (an unwritable one fails here, named) and point the compilers at it."""
    folder = os.path.abspath(os.path.expanduser(configured or os.environ.get(FOLDER_VARIABLE) or DEFAULT_FOLDER))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"kernel cache folder {folder} cannot be created ({error}); set kernel_cache_dir or "
            f"{FOLDER_VARIABLE} to a writable folder"
        ) from None
    os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(folder, "triton"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(folder, "inductor"))
    # Triton autotuners that do not choose for themselves (MetaLA's own core kernels; fla passes its own
    # FLA_CACHE_RESULTS) keep their chosen configurations in the cache too, so a warm start does not time them again
    os.environ.setdefault("TRITON_CACHE_AUTOTUNING", "1")
    return folder


@dataclass(frozen=True)
class MixerShapes:
    """What one rank's MetaLA kernels are compiled and tuned for."""

    micro_batch: int
    seq_length: int
    hidden_size: int
    heads_per_rank: int
    tensor_parallel: int
    dtype: torch.dtype
    metala: MetaLAOptions

    @classmethod
    def of(cls, args: NeoXArgs) -> MixerShapes | None:
        """This config's per-rank shapes; None when it has no MetaLA layer."""
        if "metala" not in layer_types(args):
            return None
        model, metala, tp = args.model, args.metala, args.parallel.model_parallel_size
        return cls(
            args.training.train_micro_batch_size_per_gpu,
            model.seq_length,
            model.hidden_size,
            model.num_attention_heads // tp,
            tp,
            DTYPES[args.training.precision],
            metala.options(),
        )

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "dtype": str(self.dtype).removeprefix("torch.")})

    @classmethod
    def from_json(cls, text: str) -> MixerShapes:
        fields = json.loads(text)
        return cls(**{**fields, "dtype": getattr(torch, fields["dtype"]), "metala": MetaLAOptions(**fields["metala"])})

    def compiles_kernels(self, device: torch.device) -> bool:
        """Only the fla backend (CUDA, half precision under "auto") compiles anything; PyTorch paths do not."""
        probe = torch.empty(0, device=device, dtype=self.dtype)
        return device.type == "cuda" and ops.choose_backend(self.metala.backend, probe) == "fla"


def run_mixer_kernels(shapes: MixerShapes, device: torch.device) -> None:
    """Every kernel of one MetaLA mixer, forward and backward, as the layer calls them (random inputs; the
    projections are cuBLAS GEMMs, which need no compilation)."""
    generator = torch.Generator(device=device).manual_seed(0)
    batch, seq, hidden = shapes.micro_batch, shapes.seq_length, shapes.hidden_size
    width = hidden // shapes.tensor_parallel  # this rank's value width: heads_per_rank * head_v_dim

    def random(*shape, scale=1.0):
        values = torch.randn(*shape, generator=generator, device=device) * scale
        return values.to(shapes.dtype).requires_grad_()

    total = torch.zeros((), device=device)
    options = shapes.metala
    if options.short_conv:
        hidden_states = random(seq, batch, hidden)  # the layer's (seq, batch, hidden), seen batch-first
        conv_weight = random(hidden, options.conv_kernel_size, scale=0.5)
        conv_out, _ = ops.short_conv(
            hidden_states.transpose(0, 1),
            conv_weight,
            backend=options.backend,
            conv_kernel=options.conv_kernel,
        )
        total = total + conv_out.float().sum()
        if options.conv_kernel == "triton" and device.type == "cuda":  # what compiled blocks run (ops.short_conv)
            from .ops import short_conv_op

            total = total + short_conv_op.short_conv_silu(hidden_states.transpose(0, 1), conv_weight).float().sum()
    projected = random(batch, seq, 3 * width)  # (batch, seq, 3 W): [q | decay logits | v | gate]
    aug_balance = random(width // 2, scale=0.1) if options.self_augmentation else None
    mixed = ops.metala_mix(projected, random(width, scale=0.1), aug_balance, shapes.heads_per_rank, options)
    (total + mixed.float().sum()).backward()
    with torch.no_grad():  # evaluation runs the forward kernels without autograd
        ops.metala_mix(
            projected,
            torch.zeros(width, device=device, dtype=shapes.dtype),
            aug_balance,
            shapes.heads_per_rank,
            options,
        )
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_up(shapes: MixerShapes, device: torch.device) -> None:
    """Compile (in parallel when cold), tune and cache every kernel of these shapes; then mark them warm."""
    marker = _warm_marker(shapes, device)
    if not os.path.exists(marker):
        compile_in_parallel(shapes, device)
    run_mixer_kernels(shapes, device)
    with open(marker, "w") as f:
        f.write(shapes.to_json())


def _warm_marker(shapes: MixerShapes, device: torch.device) -> str:
    import triton

    versions = [torch.__version__, triton.__version__, _fla_version(), torch.cuda.get_device_name(device)]
    digest = hashlib.sha256(json.dumps([shapes.to_json(), versions]).encode()).hexdigest()[:24]
    return os.path.join(os.environ["TRITON_CACHE_DIR"], f"neox-metala-warm-{digest}")


def _fla_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fla-core")
    except PackageNotFoundError:
        return "none"


def compile_in_parallel(shapes: MixerShapes, device: torch.device) -> None:
    """Compile every autotuning candidate in up to MAX_COMPILE_PROCESSES processes, each a share of them (their
    timings are not kept); a failed share only leaves its candidates to the timing run."""
    processes = min(MAX_COMPILE_PROCESSES, len(os.sched_getaffinity(0)))
    env = {**os.environ, "FLA_CACHE_RESULTS": "0", "TRITON_CACHE_AUTOTUNING": "0"}
    logs = [tempfile.TemporaryFile("w+") for _ in range(processes)]
    started = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "neox_metala.warmup",
                _SHARE_FLAG,
                f"{share}/{processes}",
                shapes.to_json(),
                str(device.index or 0),
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        for share, log in enumerate(logs)
    ]
    for share, (process, log) in enumerate(zip(started, logs)):
        if process.wait():
            log.seek(0)
            logger.warning(
                "kernel compilation share %d/%d failed (exit %d): %s",
                share,
                processes,
                process.returncode,
                log.read()[-2000:],
            )
        log.close()


def _compile_share(argv: list[str]) -> int:
    """A child of compile_in_parallel: keep share i of every autotuner's candidates and run each once."""
    share, device_index = argv[0], int(argv[2])
    index, count = map(int, share.split("/"))
    from triton.runtime import autotuner

    original_prune = autotuner.Autotuner.prune_configs

    def prune_to_share(self, kwargs):
        # After the kernel's own pruning: a share taken before it could be pruned to nothing (an error).
        candidates = original_prune(self, kwargs)
        return candidates[index::count] or [candidates[index % len(candidates)]]

    autotuner.Autotuner.prune_configs = prune_to_share
    # compile and run each candidate once instead of timing it
    autotuner.Autotuner.do_bench = property(lambda self: lambda fn, quantiles=None, **_: (fn(), [1.0, 1.0, 1.0])[1])
    run_mixer_kernels(MixerShapes.from_json(argv[1]), torch.device("cuda", device_index))
    return 0


def warm_up_node(shapes: MixerShapes | None, device: torch.device) -> float | None:
    """Collective: local rank 0 of each node compiles (or loads) the kernels while the node's other ranks wait.
    Returns the seconds local rank 0 spent (None elsewhere, and when nothing compiles)."""
    import torch.distributed as dist

    if shapes is None or not shapes.compiles_kernels(device):
        return None
    seconds = None
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        start = time.perf_counter()
        warm_up(shapes, device)
        seconds = time.perf_counter() - start
    dist.barrier()
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m neox_metala.warmup",
        description="Compile and autotune the GPU kernels a config's "
        "training needs, on this machine's first GPU, into the kernel cache that its runs then load from.",
    )
    parser.add_argument("conf_files", nargs="+", help="the run's YAML files")
    parser.add_argument("-d", "--conf_dir", "--conf-dir", default=None, help="directory the YAML files are in")
    parser.add_argument(
        "--world-size",
        type=int,
        default=None,
        help="GPUs of the run, when the micro batch is derived from it (default: the smallest "
        "world the parallel layout allows)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [_SHARE_FLAG]:
        return _compile_share(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options = _parser().parse_args(argv)
    try:
        args = load_config(options.conf_files, options.conf_dir)
        world = options.world_size or args.parallel.model_parallel_size * args.parallel.pipeline_stages
        args.resolve(world)
    except ConfigError as error:
        print(f"warmup: error: {error}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("warmup: error: no CUDA GPU is visible; the kernels it caches are GPU kernels", file=sys.stderr)
        return 2
    folder = use_kernel_cache(args.training.kernel_cache_dir)
    shapes = MixerShapes.of(args)
    device = torch.device("cuda", 0)
    if shapes is None or not shapes.compiles_kernels(device):
        print(
            f"warmup: nothing to compile for this config (precision {args.training.precision}, backend "
            f"{args.metala.metala_backend}, layers {sorted(set(layer_types(args)))})"
        )
        return 0
    print(f"warmup: kernel cache {folder} (Triton: {os.environ['TRITON_CACHE_DIR']}); shapes {shapes}", flush=True)
    start = time.perf_counter()
    warm_up(shapes, device)
    print(f"warmup: compiled or loaded every MetaLA kernel in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
