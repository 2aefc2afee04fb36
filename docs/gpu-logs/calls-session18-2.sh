# Session 18, call 2 (nvidia-h200-x2): the block's memory with the backward in batch slices (GPU 0); the core's GPU
# tests around the change and the kept-states core at chunks of 64 and 32 (GPU 1).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
(export CUDA_VISIBLE_DEVICES=0
 LAYER_LIMIT=240 LAYER_ARGS="--kinds metala attention --seq 2048" bash bench/gpu_session.sh layer-main > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 mkdir -p $OUT/gpu1 && OUT=$OUT/gpu1 CORE_TESTS_LIMIT=300 \
   CORE_TESTS="tests/ops/test_metala_core_triton.py tests/ops/test_mixer_triton.py" \
   CORE_TESTS_K="slices or model_widths or one_op or custom_op or model_shape" \
   CORE_LIMIT=200 CORE_ARGS="--chunk-sizes 64 32" \
   bash bench/gpu_session.sh core-tests core > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "measured|ratio|share|floor|exit|ms \(" | tail -20; echo ----
grep -v "^WARNING" $OUT/gpu1.txt | grep -E "passed|failed|FAILED|exit|CORE|chunks of" | tail -30
