# Session 17, call 2 (nvidia-h200-x2): the epilogue with the forward's stored dot product a, the partial sums as one
# kernel, the loss kernel at (2048, 8). The gradient-accumulation change in progress is replaced by HEAD's files.
cp .gpu/head/engine.py neox_metala/training/engine.py; cp .gpu/head/grad_accumulation.py neox_metala/training/grad_accumulation.py
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0
 TRAIN_LIMIT=280 TRAIN_ARGS="--seqs 8192 --kinds baseline metala --iters 10" \
 PROFILE_LIMIT=130 PROFILE_ARGS="--kinds metala --seq 8192 --top 60" bash bench/gpu_session.sh train profile > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 mkdir -p $OUT/gpu1 && OUT=$OUT/gpu1 EPILOGUE_LIMIT=150 TESTS_LIMIT=240 \
   NEW_TESTS="tests/ops/test_epilogue_triton.py tests/ops/test_mixer_triton.py tests/ops/test_partial_sums.py tests/ops/test_short_conv_triton.py tests/ops/test_cross_entropy_triton.py tests/layers/test_model_gpu.py" \
   bash bench/gpu_session.sh epilogue new-tests > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "^T=|exit|== metala|passed|failed" | tail -8; echo ----
grep -E "EPILOGUE|backward blocks|passed|failed|exit" $OUT/gpu1.txt | head -30
