# session 15, call 1 (nvidia-h200-x2). GPU 0: issue 14's same-run table with the code as committed at the end of
# session 14 (epilogue backward 3 stages, chunk_dv BV 128 in the list, the loss's fused maxima). GPU 1: the GPU tests
# not yet run on that code (conv / epilogue pipelined loops, core KSTEP, model, decode, loss), then the qk-gradient
# kernel's candidates (KSTEP, 16 warps, register caps), each checked against fp64 first.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0
 TRAIN_LIMIT=450 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline attention metala --iters 10" bash bench/gpu_session.sh train > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 TESTS_LIMIT=240 NEW_TESTS="tests/ops/test_short_conv_triton.py tests/ops/test_epilogue_triton.py tests/ops/test_metala_core_triton.py tests/layers/test_model_gpu.py tests/model/test_decode_step_gpu.py tests/model/test_loss.py" \
   bash bench/gpu_session.sh new-tests > $OUT/gpu1.txt 2>&1
 CORE_CONFIGS_LIMIT=190 CORE_CONFIGS_ARGS="--kernels chunk_qk_grads --cases 8x2048" bash bench/gpu_session.sh core-configs >> $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "^T=|exit" | tail -10; echo ----
grep -E "passed|failed|FAILED|exit|Error" $OUT/gpu1.txt $OUT/new-tests.log | head -30
grep -E "CONFIGS|check|best|ms|exit" $OUT/core-configs.log | grep -v "^WARNING" | tail -40
