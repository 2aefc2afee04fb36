# Ran: the working tree (main a20e9d3 + v5 + the qk gradients' suffix sums as two tf32 products) against .gpu/variants/v5 (main a20e9d3 + v5)
# Session 38, call 5 (nvidia-h200): core f+b of v5 and of the tree, then the bf16 split ids of the qk gradients' test (two processes)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_core v5 $PWD/.gpu/variants/v5
ab_core scan $PWD
TESTS_LIMIT=140 ab_tests .gpu/s0 .gpu/s1
grep -h -E "FAILED|Error|TRITON-CORE" $OUT/tests-*.log | cut -c1-250 | head -20
ab_core v5-again $PWD/.gpu/variants/v5
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
