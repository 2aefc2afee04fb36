# Ran: main 16b68a2 with QK_K_SPLIT = True
# Session 32, call 5 (nvidia-h200): QK_K_SPLIT on in the tree: the user's deepy.py runs on one GPU (test_gpu_runs.py: exits soon after its last iteration; SIGTERM saves and exits 0)
GPU_SUITE_LIMIT=270 GPU_SUITE_K="exits_zero or (sigterm and 1gpu)" SAVE_CACHE=0 bash bench/gpu_session.sh gpu-suite > $OUT/suite.log 2>&1; tail -15 $OUT/suite.log
