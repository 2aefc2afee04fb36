# session 15, call 2 (nvidia-h200-x2): SPLIT_FORMS (the qk gradients and dv each as a factorised launch built without
# the sub-chunk form's registers, plus a sub-chunk launch for strong-decay chunks), epilogue backward (8, 4) at 3
# stages, conv dpre 3 stages. GPU 0: issue 14's same-run table. GPU 1: the core's GPU tests in the new form, the
# factorised kernels' candidates, then the model / decode / loss GPU tests.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0
 TRAIN_LIMIT=430 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline attention metala --iters 10" bash bench/gpu_session.sh train > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 TESTS_LIMIT=130 NEW_TESTS="tests/ops/test_metala_core_triton.py tests/ops/test_triton_launch.py" \
   NEW_TESTS_K="split-dv-forms or channel_blocks or custom_op or inputs or launch" bash bench/gpu_session.sh new-tests > $OUT/gpu1.txt 2>&1
 mv $OUT/new-tests.log $OUT/core-tests.log
 CORE_CONFIGS_LIMIT=170 CORE_CONFIGS_ARGS="--kernels chunk_qk_grads_factorised chunk_dv_factorised --cases 8x2048" bash bench/gpu_session.sh core-configs >> $OUT/gpu1.txt 2>&1
 NEW_TESTS_K= TESTS_LIMIT=130 NEW_TESTS="tests/model/test_loss.py tests/model/test_decode_step_gpu.py tests/layers/test_model_gpu.py" bash bench/gpu_session.sh new-tests >> $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "^T=|exit" | tail -10; echo ----
grep -E "passed|failed|FAILED|exit|Error" $OUT/gpu1.txt $OUT/core-tests.log $OUT/new-tests.log | head -30
grep -E "CONFIGS|check .*FAILED|best|exit" $OUT/core-configs.log | grep -v "^WARNING" | tail -12
