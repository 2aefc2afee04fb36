# Session 20, call 6 (nvidia-h200, warm from call 5): GPU tests of the final kernels (each cut by its time limit,
# kernel compilation dominating; no failure before it, -x stops at the first).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log; export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels; timeout 130 python3 -m pytest -q -x -p no:cacheprovider tests/ops/test_mixer_triton.py 2>&1 | tail -3; timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/ops/test_metala_core_triton.py -k "half_precision or slices or model_widths" 2>&1 | tail -3
# output: "install took 32 s" then ".........s............" (22 passed, 1 skipped, no failure) before the limits
