"""Train a neox-metala model. Started on every rank by `python deepy.py train.py -d configs a.yml b.yml`
(or directly: `torchrun --nproc_per_node N train.py -d configs a.yml b.yml`)."""

import sys

from neox_metala.training.trainer import main

if __name__ == "__main__":
    sys.exit(main())
