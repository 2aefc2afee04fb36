# Ran: main 03e8744 + the two test fixes of session 35 (test_triton_launch's core_launches, test_custom_op_runs_the_kernels' kept states), uncommitted
# Session 35, call 3 (nvidia-h200): the rest of tests/ops/test_metala_core_triton.py and test_mixer_triton.py's GPU ids on the final tree (111 ids, six processes)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=${LIMIT:-440} ab_tests .gpu/r1 .gpu/r2 .gpu/r3 .gpu/r4 .gpu/r5 .gpu/r6
grep -h "^FAILED\|^ERROR" $OUT/tests-*.log | head -30
for f in $OUT/tests-*.log; do echo "$f: $(head -c 300 $f | head -1)"; done
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
