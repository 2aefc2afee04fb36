# Session 18, call 5 (nvidia-h200-x2): the committed code (the backward in batch slices, the block bench passing the
# input's gradient on): the block bench at both lengths (GPU 0); the core's and the one-op mixer's GPU tests (GPU 1).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
mkdir -p $OUT/gpu0 $OUT/gpu1
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 OUT=$OUT/gpu0 LAYER_LIMIT=260 LAYER_ARGS="--kinds metala attention" \
   bash bench/gpu_session.sh layer-main > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 OUT=$OUT/gpu1 CORE_TESTS_LIMIT=290 CORE_TESTS="tests/ops/test_mixer_triton.py tests/ops/test_metala_core_triton.py" \
   bash bench/gpu_session.sh core-tests > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "measured|ratio|share|floor|exit|ms \(" | tail -20; echo ----
grep -v "^WARNING" $OUT/gpu1.txt | grep -E "passed|failed|FAILED|exit" | tail -12
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
ls $OUT
