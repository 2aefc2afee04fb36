# session 16, call 2 (nvidia-h200-x2): the block's RMS norms as one Triton op each way (the second with the residual
# add), the loss's softmax cross-entropy as one kernel per chunk, the MLP's down projection adding the residual in its
# GEMM, STORED_DECAY_ROWS on. GPU 0: their GPU tests, their benches against the compiled code they replace, the core's
# tests in the stored form. GPU 1: issue 14's same-run table at both lengths.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 TESTS_LIMIT=200 NEW_TESTS="tests/ops/test_rms_norm_triton.py tests/ops/test_cross_entropy_triton.py tests/ops/test_swiglu_triton.py tests/model/test_loss.py tests/layers/test_model_gpu.py" \
 NORM_LIMIT=100 LOSS_LIMIT=80 CORE_TESTS_LIMIT=130 CORE_TESTS=tests/ops/test_metala_core_triton.py CORE_TESTS_K="stored" \
   bash bench/gpu_session.sh new-tests norm loss core-tests > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611
 TRAIN_LIMIT=500 TRAIN_ARGS="--seqs 8192 2048 --kinds baseline metala attention --iters 10" bash bench/gpu_session.sh train > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu1.txt | grep -E "^T=|exit" | tail -10; echo ----
grep -E "passed|failed|FAILED|exit|Error|NORM|LOSS|blocks" $OUT/gpu0.txt | head -40
