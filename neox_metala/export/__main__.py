"""python -m neox_metala.export hf   --load CHECKPOINT_DIR [--iteration N] --out HF_DIR
python -m neox_metala.export neox --hf HF_DIR --out CHECKPOINT_DIR --model-parallel-size N --pipe-parallel-size M
                                  [--data-parallel-size K] [-d CONF_DIR run.yml ...]"""

from __future__ import annotations

import argparse
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m neox_metala.export", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    hf = commands.add_parser("hf", help="our checkpoint (any TP/PP layout) -> a Hugging Face folder")
    hf.add_argument("--load", required=True, help="the checkpoint folder a run saved to (holds `latest`)")
    hf.add_argument("--iteration", type=int, default=None, help="step to export (default: the latest complete)")
    hf.add_argument("--out", required=True, help="folder to write (created)")
    hf.add_argument("--vocab-file", default=None, help="tokenizer file, if the one in the run's config moved")
    neox = commands.add_parser("neox", help="a Hugging Face MetaLA folder -> our checkpoint (iteration 0)")
    neox.add_argument("--hf", required=True, help="folder with config.json and *.safetensors (official layout)")
    neox.add_argument("--out", required=True, help="checkpoint folder to write (use it as `load`)")
    neox.add_argument("--model-parallel-size", type=int, default=1)
    neox.add_argument("--pipe-parallel-size", type=int, default=0, help="0: plain engine; >= 1: pipeline stages")
    neox.add_argument(
        "--data-parallel-size",
        type=int,
        default=1,
        help="DP size of the run that will load it (DeepSpeed ties ZeRO state to it)",
    )
    neox.add_argument("--vocab-file", default=None, help="HF tokenizer JSON, if the folder has no tokenizer.json")
    neox.add_argument("conf_files", nargs="*", help="the run's YAML files (optimizer, precision, ZeRO)")
    neox.add_argument("-d", "--conf_dir", "--conf-dir", default=None, help="directory of the YAML files")
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options = _parser().parse_args(argv)
    from ..config import ConfigError
    from ..training.checkpoint_files import CheckpointFormatError
    from .convert import ConversionError

    try:
        if options.command == "hf":
            from .hf import export_hf

            out = export_hf(options.load, options.out, options.iteration, options.vocab_file)
        else:
            from .neox import import_hf

            out = import_hf(
                options.hf,
                options.out,
                options.model_parallel_size,
                options.pipe_parallel_size,
                options.data_parallel_size,
                options.conf_files,
                options.conf_dir,
                options.vocab_file,
            )
    except (ConversionError, CheckpointFormatError, ConfigError) as error:
        raise SystemExit(f"python -m neox_metala.export {options.command}: error: {error}") from None
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
