"""What deepy.py does: from validated YAML to running ranks (`deepy.py`), the hosts and GPU slots of a launch
(`resources.py`), one machine's ranks started and watched here (`local.py`), DeepSpeed's runner for several
machines (`command.py`; with pdsh, `pdsh_runner.py` starts `node.py` on every node, which watches that node's ranks
with `local.py`), and the command line through which each rank's train.py receives the resolved config
(`train_args.py`). `neox_metala.config` only reads and validates YAML."""
