# Session 17, call 3 (nvidia-h200-x2): everything as committed this session. GPU 0: T=8192 baseline and MetaLA, the
# step profile, the GPU tests of the new kernels; GPU 1: T=2048 baseline, attention and MetaLA.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
(export CUDA_VISIBLE_DEVICES=0
 TRAIN_LIMIT=240 TRAIN_ARGS="--seqs 8192 --kinds baseline metala --iters 10" \
 PROFILE_LIMIT=120 PROFILE_ARGS="--kinds metala --seq 8192 --top 60" TESTS_LIMIT=200 \
 NEW_TESTS="tests/training/test_grad_accumulation_kernel.py tests/ops/test_partial_sums.py tests/ops/test_epilogue_triton.py tests/ops/test_mixer_triton.py tests/ops/test_short_conv_triton.py" \
 bash bench/gpu_session.sh train profile new-tests > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 mkdir -p $OUT/gpu1 && OUT=$OUT/gpu1 TRAIN_LIMIT=330 TRAIN_ARGS="--seqs 2048 --kinds baseline attention metala --iters 10" \
   bash bench/gpu_session.sh train > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "^T=|exit|== metala|passed|failed" | tail -10; echo ----
grep -E "^T=|passed|failed|exit" $OUT/gpu1.txt | head -10
