"""Stand-in for train.py in the launcher test: parse the config like train.py does, prove the ranks can talk
(one gloo all-reduce), and print one JSON line per rank for the test to read."""

import json
import os

import torch
import torch.distributed as dist

from neox_metala.launch.train_args import parse_train_args

args = parse_train_args()
dist.init_process_group("gloo")  # MASTER_ADDR / MASTER_PORT / RANK / WORLD_SIZE come from DeepSpeed's launcher
ranks_sum = torch.tensor([dist.get_rank() + 1])
dist.all_reduce(ranks_sum)
report = (
    "RANK_REPORT "
    + json.dumps(
        {
            "rank": dist.get_rank(),
            "world_size": dist.get_world_size(),
            "local_rank": int(os.environ["LOCAL_RANK"]),
            "all_reduce": int(ranks_sum.item()),
            "ds_accelerator": os.environ.get("DS_ACCELERATOR"),
            "hidden_size": args.model.hidden_size,
            "data_parallel_size": args.derived.data_parallel_size,
            "train_batch_size": args.training.train_batch_size,
            "layer_types": args.model.attention_config,
        }
    )
    + "\n"
)
os.write(1, report.encode())  # one write, so that the two ranks' lines cannot interleave
dist.destroy_process_group()
