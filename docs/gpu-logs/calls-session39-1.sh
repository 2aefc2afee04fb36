# Ran: main 7661040 (.gpu/variants/main) and the working tree (main + the kernels' log1p as a degree-8 polynomial, no division)
# Session 39, call 1 (nvidia-h200): core f+b of main, the tree, main again; bench/layer.py's block for the tree; the log1p test and the epilogue tests
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_core main $PWD/.gpu/variants/main
ab_core poly $PWD
ab_core main-again $PWD/.gpu/variants/main
ab_core poly-again $PWD
ab_layer poly $PWD 2048 8192
TESTS_LIMIT=150 ab_tests .gpu/e0
grep -h -E "FAILED|Error|log1p:" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
