"""--set KEY=VALUE ...: config keys given to a benchmark's runs (bench/train.py, bench/step_profile.py,
bench/layouts.py), values read as YAML."""

from __future__ import annotations

import yaml


def add_set_argument(parser) -> None:
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        type=lambda item: (item.split("=", 1)[0], yaml.safe_load(item.split("=", 1)[1])),
        help="config keys for the runs (YAML values), e.g. torch_compile_mode=reduce-overhead",
    )
