# session 13, call 3 (nvidia-h200-x2): ops/mixer_op.py (the core's and epilogue's gradients written into the
# projection's gradient by the kernels) and 16-step epilogue backward. GPU 0: the whole model at T=2048 and 8192
# (baseline and MetaLA defaults); GPU 1: the GPU tests of the changed kernels, then the step profile
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0; TRAIN_LIMIT=400 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline metala --iters 10" \
   bash bench/gpu_session.sh train > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 SAVE_CACHE=0 MASTER_PORT=29611
 TESTS_LIMIT=230 NEW_TESTS="tests/ops/test_mixer_triton.py tests/ops/test_epilogue_triton.py tests/layers/test_model_gpu.py tests/ops/test_fused_gpu.py::test_paths_equal_reference[T63-bf16-self-aug] tests/ops/test_fused_gpu.py::test_paths_equal_reference[T1-bf16-no-self-aug] tests/ops/test_fused_gpu.py::test_paths_equal_reference[T2048-bf16-self-aug] tests/ops/test_fused_gpu.py::test_paths_equal_reference[B3-T100-H3-bf16-self-aug]" \
   bash bench/gpu_session.sh new-tests > $OUT/gpu1.txt 2>&1
 PROFILE_LIMIT=150 PROFILE_ARGS="--kinds metala --top 40" bash bench/gpu_session.sh profile >> $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "T=|exit|ratio" | tail -8; echo ----
grep -E "passed|failed|FAILED|Error|exit|GPU-ERR (one|default-B2-T2048)" $OUT/gpu1.txt $OUT/new-tests.log | head -40
grep -E "ms/step|gemm|elementwise|metala core|idle|chunk_|epilogue|cat|combine" $OUT/profile.log | head -24
