# Ran: the working tree (call 1's "new": the qk gradients' inter sums as their intra products' accumulators) + .gpu/timedtrace-session37.py
# Session 37, call 2 (nvidia-h200): bench/layer.py's timed runs traced (where the block at T=2048 waits), then the GPU tests of the changed qk-gradient kernel (132 ids, eight processes)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
timeout 170 python3 .gpu/timedtrace-session37.py $OUT/timed --seq 2048 8192 --kinds metala attention > $OUT/timed.log 2>&1; echo "timed exit $?"; grep -v -i warn $OUT/timed.log | cut -c1-400
TESTS_LIMIT=370 ab_tests .gpu/t0 .gpu/t1 .gpu/t2 .gpu/t3 .gpu/t4 .gpu/t5 .gpu/t6 .gpu/t7
grep -h -E "FAILED|Error" $OUT/tests-*.log | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
