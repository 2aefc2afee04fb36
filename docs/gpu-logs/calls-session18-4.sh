# Session 18, call 4 (nvidia-h200-x2): which configurations of the sequential kernels are right in bf16/fp16 (each in
# a process of its own: call 3's bf16 forward at 4 warps was wrong and an autotuning faulted) and their time against
# the chunk-parallel core (GPU 0); the GPU tests and the block bench with the shipped 8-warp list (GPU 1).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
mkdir -p $OUT/gpu0 $OUT/gpu1
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 OUT=$OUT/gpu0 CORE_CONFIGS_LIMIT=400 \
   CORE_CONFIGS_ARGS="--sequential --kernels sequential_forward sequential_dv --cases 64x2048 16x8192 8x2048 --runs 20" \
   bash bench/gpu_session.sh core-configs > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611
 OUT=$OUT/gpu1 CORE_TESTS_LIMIT=120 CORE_TESTS="tests/ops/test_metala_core_triton.py" CORE_TESTS_K="sequential" \
   LAYER_LIMIT=260 LAYER_ARGS="--kinds metala attention --sequential on" \
   bash bench/gpu_session.sh core-tests layer-main > $OUT/gpu1.txt 2>&1) &
wait
grep -E "^check|^T |CORE CONFIGS|Error" $OUT/gpu0/core-configs.log | cut -c1-230 | tail -40; echo ----
grep -v "^WARNING" $OUT/gpu1.txt | grep -E "passed|failed|FAILED|measured|ratio|share|floor|exit|ms \(" | tail -20
mv $OUT/gpu1/cache.tgz.part-* $OUT/ 2>/dev/null
tar -czf /tmp/all.tgz --exclude='cache.tgz.part-*' -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 ! -name 'cache.tgz.part-*' -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
ls $OUT
