# session 14, call 4 (nvidia-h200-x2): pipelined step loops (epilogue backward, conv dpre: 2 stages by default now),
# chunk_dv's BV 128 in the autotuned list. GPU 0: the sweeps that decide those defaults (bench/epilogue.py,
# bench/conv.py, bench/core_configs.py --kernels chunk_dv). GPU 1: their GPU tests, then the same-run whole model.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 EPILOGUE_LIMIT=120 EPILOGUE_ARGS="--cases 8x2048x8x128" bash bench/gpu_session.sh epilogue > $OUT/gpu0.txt 2>&1
 CONV_LIMIT=90 CONV_ARGS="--cases 8x2048x1024" bash bench/gpu_session.sh conv >> $OUT/gpu0.txt 2>&1
 CORE_CONFIGS_LIMIT=150 CORE_CONFIGS_ARGS="--kernels chunk_dv --cases 8x2048 2x8192" bash bench/gpu_session.sh core-configs >> $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611
 TESTS_LIMIT=90 NEW_TESTS="tests/ops/test_epilogue_triton.py::test_pipelined_step_loop_bf16 tests/ops/test_epilogue_triton.py::test_model_shape_bf16 tests/ops/test_short_conv_triton.py tests/ops/test_swiglu_triton.py" \
   bash bench/gpu_session.sh new-tests > $OUT/gpu1.txt 2>&1
 TRAIN_LIMIT=300 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train >> $OUT/gpu1.txt 2>&1) &
wait
grep -E "EPILOGUE|backward blocks|forward blocks \(16, 4\)|CONV|dpre|backward at|chunk_dv|check chunk_dv|CORE CONFIGS|exit" $OUT/gpu0.txt $OUT/epilogue.log $OUT/conv.log $OUT/core-configs.log 2>/dev/null | grep -v "^.*gpu0.txt:.*\(dpre\|backward blocks\)" | head -60
grep -E "passed|failed|FAILED|exit" $OUT/gpu1.txt | head; grep -v "^WARNING" $OUT/gpu1.txt | grep -E "^T=" 
