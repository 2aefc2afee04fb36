# Session 17, call 1 (nvidia-h200-x2): GPU 0 — the committed code's T=8192 step profile (80 kernels listed) and the
# decode GPU test; GPU 1 — the epilogue backward's sweep with the register-capped candidates (and their GPU tests),
# the loss kernel's (block, warps) sweep. One gpu_session.sh invocation per GPU (the device returns 8 files).
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0
 PROFILE_LIMIT=170 PROFILE_ARGS="--kinds metala --seq 8192 --top 80" TESTS_LIMIT=120 \
   NEW_TESTS=tests/model/test_decode_step_gpu.py bash bench/gpu_session.sh profile new-tests > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 mkdir -p $OUT/gpu1 && OUT=$OUT/gpu1 EPILOGUE_LIMIT=180 LOSS_LIMIT=80 TESTS_LIMIT=120 \
   NEW_TESTS=tests/ops/test_epilogue_triton.py NEW_TESTS_K=pipelined \
   bash bench/gpu_session.sh epilogue loss new-tests > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "^T=|exit|== metala|passed|failed" | tail -8; echo ----
grep -E "backward blocks|blocks \(|LOSS|passed|failed|exit" $OUT/gpu1.txt $OUT/gpu1/*.log | head -40
