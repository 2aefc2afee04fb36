# Ran: main 79b8389 + the chained forward with BV 128 at 4 warps offered (uncommitted)
# Session 34, call 4 (nvidia-h200): core f+b, chained forward against the three launches (--flip CHAINED_FORWARD); the block against attention at 2048 and 8192, both forms; GPU tests of the chained forward (37 ids, four processes)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_core chained $PWD --timings
ab_core three $PWD --timings --flip CHAINED_FORWARD
ab_layer chained $PWD 2048 8192
ab_layer three $PWD 2048 8192 --flip CHAINED_FORWARD
TESTS_LIMIT=170 ab_tests .gpu/c4-00 .gpu/c4-01 .gpu/c4-02 .gpu/c4-03
grep -h "^FAILED\|Error" $OUT/tests-*.log | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
