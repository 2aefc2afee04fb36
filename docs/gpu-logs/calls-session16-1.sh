# session 16, call 1 (nvidia-h200-x2): GPU 0 — issue 14's same-run table for the committed code at both lengths,
# then a profile at T=8192 (elementwise kernels by launching op). GPU 1 — the GPU tests of the two options written
# after session 15's device time (DOT_SCAN, STORED_DECAY_ROWS), then their timings against the shipped qk kernel.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0
 TRAIN_LIMIT=330 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline attention metala --iters 10" bash bench/gpu_session.sh train > $OUT/gpu0.txt 2>&1
 PROFILE_LIMIT=170 PROFILE_ARGS="--kinds metala --seq 8192" bash bench/gpu_session.sh profile >> $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 TESTS_LIMIT=170 NEW_TESTS="tests/ops/test_metala_core_triton.py tests/ops/test_triton_launch.py" \
   NEW_TESTS_K="stored or tensor_cores" bash bench/gpu_session.sh new-tests > $OUT/gpu1.txt 2>&1
 CORE_CONFIGS_LIMIT=250 CORE_CONFIGS_ARGS="--kernels chunk_qk_grads --cases 8x2048 2x8192" bash bench/gpu_session.sh core-configs >> $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "^T=|exit|== metala" | tail -12; echo ----
grep -E "passed|failed|FAILED|exit|Error" $OUT/gpu1.txt $OUT/new-tests.log | head -20
grep -E "CONFIGS|FAILED|best|exit|STORED|DOT|ms" $OUT/core-configs.log | grep -v "^WARNING" | tail -25
