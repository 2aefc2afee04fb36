# Ran: the working tree as call 2
# Session 39, call 3 (nvidia-h200, warm after call 2): the 28 ids of call 2's lists that its limit cut, six processes
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=400 ab_tests .gpu/r0 .gpu/r1 .gpu/r2 .gpu/r3 .gpu/r5 .gpu/r7
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
