#!/usr/bin/env python3
"""Launch neox-metala training the GPT-NeoX way:

    python deepy.py train.py -d configs metala-1B.yml local_setup.yml
    python deepy.py train.py configs/metala-1B.yml configs/local_setup.yml --dry-run

The YAML files are merged and validated here, the world size is worked out from the launcher keys (hostfile,
include/exclude, num_nodes, num_gpus; one CPU process with gloo when no GPU is visible), and train.py starts on
every rank with the resolved config (--neox-config-b64): on one machine deepy.py starts and watches the ranks
itself (signals passed on, a failed rank ends the run, the ranks' exit status); on several, DeepSpeed's runner
is exec'd. See launch/README.md.
"""

import sys

from neox_metala.launch.deepy import deepy_main

if __name__ == "__main__":
    sys.exit(deepy_main())
