# Session 18, call 3 (nvidia-h200-x2): MetaLA's core forward and dv by the new kernels sequential over chunks.
# GPU 0: their GPU tests, then bench/core.py's two forms at block-like and model-like B·H. GPU 1: the block bench
# with them on (SEQUENTIAL = True). All logs end up in one archive ($OUT/0-all.tgz: the device returns 8 files).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
mkdir -p $OUT/gpu0 $OUT/gpu1
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 OUT=$OUT/gpu0 CORE_TESTS_LIMIT=170 CORE_TESTS="tests/ops/test_metala_core_triton.py" CORE_TESTS_K="sequential or slices" \
   CORE_LIMIT=230 CORE_ARGS="--forward-forms --cases 64x2048 16x8192 8x2048 2x8192" \
   bash bench/gpu_session.sh core-tests core > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611
 OUT=$OUT/gpu1 LAYER_LIMIT=330 LAYER_ARGS="--kinds metala attention --sequential on" \
   bash bench/gpu_session.sh layer-main > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "passed|failed|FAILED|exit" | tail -8
grep -E "CORE|forward,|tuned seq|Error" $OUT/gpu0/core.log | tail -20; echo ----
grep -v "^WARNING" $OUT/gpu1.txt | grep -E "measured|ratio|share|floor|exit|ms \(" | tail -20
mv $OUT/gpu1/cache.tgz.part-* $OUT/ 2>/dev/null
tar -czf /tmp/all.tgz --exclude='cache.tgz.part-*' -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 ! -name 'cache.tgz.part-*' -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
ls $OUT
