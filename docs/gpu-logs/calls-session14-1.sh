# session 14, call 1 (nvidia-h200-x2). GPU 0: the same-run table of issue 14 (baseline, attention, MetaLA at T=2048
# and 8192, the one-op code). GPU 1: SPLIT_INTRA's kernels swept and timed against the one-kernel form, then the
# GPU tests of the one op and the epilogue.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0; TRAIN_LIMIT=480 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline attention metala --iters 10" \
   bash bench/gpu_session.sh train > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 SAVE_CACHE=0 MASTER_PORT=29611
 CORE_CONFIGS_LIMIT=330 CORE_CONFIGS_ARGS=--split-intra bash bench/gpu_session.sh core-configs > $OUT/gpu1.txt 2>&1
 TESTS_LIMIT=150 NEW_TESTS="tests/ops/test_mixer_triton.py tests/ops/test_epilogue_triton.py" \
   bash bench/gpu_session.sh new-tests >> $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "T=|exit|ratio" | tail -10; echo ----
grep -E "CORE CONFIGS|best|FAILED|exit" $OUT/gpu1.txt $OUT/core-configs.log | head -40
grep -E "passed|failed|FAILED|Error" $OUT/new-tests.log | head -20
