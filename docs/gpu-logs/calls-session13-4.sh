# session 13, call 4 (nvidia-h200-x2): the core's gradient kernels load what they add to before their loops.
# GPU 0: the whole model at T=2048 (baseline, MetaLA defaults); GPU 1: the changed kernels' GPU tests, the profile
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0; TRAIN_LIMIT=200 TRAIN_ARGS="--seqs 2048 --kinds baseline metala --iters 10" \
   bash bench/gpu_session.sh train > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 SAVE_CACHE=0 MASTER_PORT=29611
 TESTS_LIMIT=150 NEW_TESTS="tests/ops/test_mixer_triton.py tests/ops/test_metala_core_triton.py::test_kernels_at_model_widths tests/ops/test_metala_core_triton.py::test_custom_op_runs_the_kernels" \
   bash bench/gpu_session.sh new-tests > $OUT/gpu1.txt 2>&1
 PROFILE_LIMIT=120 PROFILE_ARGS="--kinds metala --top 30" bash bench/gpu_session.sh profile >> $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "T=|exit|ratio" | tail -6; echo ----
grep -E "passed|failed|FAILED|Error|exit|GPU-ERR" $OUT/gpu1.txt $OUT/new-tests.log | head -20
grep -E "ms/step|gemm|elementwise|metala core|idle|chunk_|epilogue_|output_kernel" $OUT/profile.log | head -14
