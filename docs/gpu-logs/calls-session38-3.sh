# Ran: the working tree as call 2 (main a20e9d3 + session 37's v5 diff, the accumulating build's test within fp32 rounding)
# Session 38, call 3 (nvidia-h200, warm after call 2): the 46 ids of call 2's list that its limit cut, eight processes
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=400 ab_tests .gpu/r0 .gpu/r1 .gpu/r2 .gpu/r3 .gpu/r4 .gpu/r5 .gpu/r6 .gpu/r7
grep -h -E "FAILED|Error" $OUT/tests-*.log | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
