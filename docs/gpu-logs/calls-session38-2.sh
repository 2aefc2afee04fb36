# Ran: the working tree (main a20e9d3 + session 37's v5 diff: the qk gradients' inter sums as their products' accumulators; the accumulating build's test within fp32 rounding)
# Session 38, call 2 (nvidia-h200): the GPU tests of the qk, mixer and model-width ids (session 37's 132, eight processes), then the kernel cache
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=470 ab_tests .gpu/t0 .gpu/t1 .gpu/t2 .gpu/t3 .gpu/t4 .gpu/t5 .gpu/t6 .gpu/t7
grep -h -E "FAILED|Error" $OUT/tests-*.log | head -20
ab_save_cache
cd $OUT && tar -czf /tmp/all.tgz --exclude='cache.tgz.part-*' . && find . -mindepth 1 -maxdepth 1 ! -name 'cache.tgz.part-*' -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
