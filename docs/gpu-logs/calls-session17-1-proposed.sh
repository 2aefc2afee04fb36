# Proposed first call of session 17 (nvidia-h200-x2; copy to .gpu/call1.sh): GPU 0 — the committed code's T=8192 row
# and its step profile; GPU 1 — the epilogue backward's sweep with the register-capped candidates (and their GPU
# tests), the loss kernel's (block, warps) sweep. One gpu_session.sh invocation per GPU (the device returns 8 files).
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0
 TRAIN_LIMIT=200 TRAIN_ARGS="--seqs 8192 --kinds baseline metala --iters 10" \
 PROFILE_LIMIT=150 PROFILE_ARGS="--kinds metala --seq 8192" bash bench/gpu_session.sh train profile > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 mkdir -p $OUT/gpu1 && OUT=$OUT/gpu1 EPILOGUE_LIMIT=200 LOSS_LIMIT=90 TESTS_LIMIT=150 \
   NEW_TESTS=tests/ops/test_epilogue_triton.py NEW_TESTS_K=pipelined \
   bash bench/gpu_session.sh epilogue loss new-tests > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "^T=|exit|== metala" | tail -8; echo ----
grep -E "backward blocks|blocks \(|LOSS|passed|failed|exit" $OUT/gpu1.txt $OUT/gpu1/*.log | head -40
