# Ran: main 79b8389 (session 33's final tree)
# Session 34, call 1 (nvidia-h200): the GPU tests of strong, mixed, graded and open decays (79 ids of tests/ops/test_metala_core_triton.py and test_mixer_triton.py), six processes; the kernel cache saved for the next calls
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=470 ab_tests .gpu/strong-00 .gpu/strong-01 .gpu/strong-02 .gpu/strong-03 .gpu/strong-04 .gpu/strong-05
grep -h "^FAILED\|Error\|passed\|failed" $OUT/tests-*.log | head -30
ab_save_cache > /dev/null 2>&1; ls $OUT | head
cd $OUT && tar -czf /tmp/all.tgz --exclude='cache.tgz.part-*' . && find . -mindepth 1 -maxdepth 1 ! -name 'cache.tgz.part-*' -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
