"""Launch -> first logged iteration of the user's command for the 380M config (configs/metala-380M.yml, bundled
sample corpus, log_interval 1, one optimizer step of 16 sequences per iteration), through deepy.py:

  1. one GPU, empty kernel cache (cold: every MetaLA kernel compiled and autotuned);
  2. the same command again (warm);
  3. PP=2 on two GPUs (same per-rank kernel shapes: warm);
  4. `python -m neox_metala.warmup` for a TP=2 layout (new per-rank shapes: compiles), then that layout's start.
Any step named LAYOUT-cold (e.g. --steps pp2-cold pp2-warm) starts from an emptied kernel cache.

    python bench/starts.py --kernel-cache /tmp/empty-folder --out starts.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import layouts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernel-cache", required=True, help="an empty folder: the first start is cold")
    parser.add_argument("--work", default="/tmp/neox-metala-starts")
    parser.add_argument("--steps", default=["1gpu-cold", "1gpu-warm", "pp2-warm", "tp2-warmup"], nargs="+")
    parser.add_argument("--limit", type=float, default=480)
    parser.add_argument("--out", default=None)
    options = parser.parse_args(argv)
    work = Path(options.work)
    data = layouts.sample_data(work)
    report = {}

    def start(name: str, layout: str) -> None:
        run_dir = work / name
        files = layouts.write_configs(run_dir, layout, 3, data, options.kernel_cache, layouts.free_port())
        gpus = layouts.LAYOUTS[layout][2]
        result = layouts.finish(name, layouts.Launch(run_dir, files, list(range(gpus)), options.limit), run_dir, gpus)
        report[name] = result.__dict__
        print(layouts.summary_line(result), flush=True)

    for step in options.steps:
        if step == "tp2-warmup":
            run_dir = work / "tp2-warmup"
            files = layouts.write_configs(run_dir, "tp2", 3, data, options.kernel_cache, layouts.free_port())
            began = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "neox_metala.warmup", "-d", str(run_dir), *files],
                cwd=layouts.REPO,
                capture_output=True,
                text=True,
            )
            report["tp2-warmup-command"] = {
                "exit_code": done.returncode,
                "seconds": time.monotonic() - began,
                "output": (done.stdout + done.stderr)[-3000:],
            }
            print(
                f"warmup command (tp2 shapes): exit {done.returncode} in {time.monotonic() - began:.1f} s", flush=True
            )
            start("tp2-after-warmup", "tp2")
        else:
            if step.endswith("-cold"):  # measured from an empty kernel cache, whatever the steps before left in it
                shutil.rmtree(options.kernel_cache, ignore_errors=True)
            layout = step.split("-")[0]
            start(step, layout)
    if options.out:
        Path(options.out).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
