# Session 31, call 3 (nvidia-h200): QK_K_SPLIT on (K_SPLIT 2 at 4 warps, BV 64, 3 stages offered to the autotuner): the block against the switch off in one call, then the GPU tests of the core, the one op and the epilogue (the shipped split's bf16 tests at T 1, 40, 300, 2048 included), the kernel cache saved
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_layer main $PWD 2048 8192
ab_layer unsplit $PWD 2048 8192 --flip QK_K_SPLIT
TESTS_LIMIT=300 ab_tests .gpu/ids-*
ab_save_cache
cd $OUT && tar -czf /tmp/all.tgz --exclude='cache.tgz.part-*' . && find . -mindepth 1 -maxdepth 1 ! -name 'cache.tgz.part-*' -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
