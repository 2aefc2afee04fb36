# Session 17, call 5 (nvidia-h200-x2): issue 15's block bench with this session's epilogue (GPU 0); the core's GPU
# tests beyond session 16's `-k stored` (GPU 1).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 bash bench/gpu_session.sh layer-main > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 mkdir -p $OUT/gpu1 && OUT=$OUT/gpu1 CORE_TESTS_LIMIT=230 CORE_TESTS=tests/ops/test_metala_core_triton.py \
   bash bench/gpu_session.sh core-tests > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "ratio|share|floor|exit|ms" | tail -30; echo ----
grep -E "passed|failed|exit" $OUT/gpu1.txt | head -10
