# Ran: main 79b8389 + the chained forward with BV 128 at 4 warps offered (uncommitted, as call 4)
# Session 34, call 6 (nvidia-h200): eight more GPU tests of the chained forward (strong decays through the one op, half precision, batch slices, fp32 at the model widths, the states against fp64), two per process
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=95 ab_tests .gpu/c6-a .gpu/c6-b .gpu/c6-c .gpu/c6-d
grep -h "^FAILED\|Error\|^E " $OUT/tests-*.log | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
