# Ran: the working tree (main 7661040 + the kernels' log1p as a degree-8 polynomial), as call 1
# Session 39, call 2 (nvidia-h200): session 38's 132 GPU ids (qk, mixer and model widths; eight processes) and the suffix-products test's 3, then the kernel cache
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=500 ab_tests .gpu/t0 .gpu/t1 .gpu/t2 .gpu/t3 .gpu/t4 .gpu/t5 .gpu/t6 .gpu/t7
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
