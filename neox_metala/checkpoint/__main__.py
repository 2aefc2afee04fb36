"""python -m neox_metala.checkpoint convert --load A --save B --model-parallel-size N [--pipe-parallel-size M]
[--data-parallel-size K] [--iteration I]"""

from __future__ import annotations

import argparse
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m neox_metala.checkpoint", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="a checkpoint -> the same step in another parallel layout")
    convert.add_argument("--load", required=True, help="the checkpoint folder a run saved to (holds `latest`)")
    convert.add_argument("--save", required=True, help="folder to write (use it as the new run's `load`)")
    convert.add_argument("--iteration", type=int, default=None, help="step to convert (default: the latest complete)")
    convert.add_argument("--model-parallel-size", type=int, required=True, help="tensor-parallel size of the new run")
    convert.add_argument("--pipe-parallel-size", type=int, default=0, help="0: plain engine; >= 1: pipeline stages")
    convert.add_argument("--data-parallel-size", type=int, default=1, help="data-parallel size of the new run")
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options = _parser().parse_args(argv)
    from ..config import ConfigError
    from ..training.checkpoint import CheckpointError
    from ..training.checkpoint_files import CheckpointFormatError
    from .convert import convert

    try:
        out = convert(
            options.load,
            options.save,
            options.model_parallel_size,
            options.pipe_parallel_size,
            options.data_parallel_size,
            options.iteration,
        )
    except (CheckpointError, CheckpointFormatError, ConfigError) as error:
        raise SystemExit(f"python -m neox_metala.checkpoint convert: error: {error}") from None
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
