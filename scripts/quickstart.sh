#!/usr/bin/env bash
# The main job on the embedded default, from nothing: set up .venv, tokenize the bundled sample corpus, train a
# tiny MetaLA (configs/tiny.yml) through the real launcher, stop at iteration 100 with a checkpoint (as a
# preempted job would), resume to iteration 200 in the same W&B run (offline), and plot the curves.
# CPU or GPU: the same commands; on a GPU the fla kernels run. About 5 minutes on 2 CPU cores, setup included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WANDB_MODE=${WANDB_MODE:-offline}
python=.venv/bin/python

echo "== tokenizing the sample corpus (data/sample -> data/sample/tokenized)"
$python -m neox_metala.data_prep sample

rm -rf checkpoints/tiny runs/tiny  # a fresh demo each time
echo "== training, first part: stops after iteration 100 with a checkpoint"
$python deepy.py train.py -d configs tiny.yml local_setup.yml quickstart_interrupt.yml
echo "== training, second part: resumes from checkpoints/tiny and finishes at iteration 200"
$python deepy.py train.py -d configs tiny.yml local_setup.yml

$python -m neox_metala.plot runs/tiny -o runs/tiny/curves.png
$python - <<'PY'
import json
rows = [json.loads(line) for line in open("runs/tiny/metrics.jsonl")]
train = [r for r in rows if "loss" in r]
first, last = train[0], train[-1]
print(f"== done: loss {first['loss']:.3f} at iteration {first['iteration']} -> {last['loss']:.3f} at iteration "
      f"{last['iteration']} ({100 * (1 - last['loss'] / first['loss']):.0f}% lower)")
print("   checkpoints: checkpoints/tiny (latest:", open("checkpoints/tiny/latest").read().strip() + ")")
print("   metrics: runs/tiny/metrics.jsonl, curves: runs/tiny/curves.png, W&B offline run: runs/tiny/wandb/")
PY
