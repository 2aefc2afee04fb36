# Ran: the working tree (main 069da39 + the pairs of V blocks offered to the chained forward's autotuner + the pair mixer test's bf16 id against the single block of 128)
# Session 41, call 2 (nvidia-h200, fresh): bench/layer.py's block at T 2048 and 8192, then the ids call 1 did not reach and the reworked pair test in fourteen processes
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_layer pairs $PWD 2048 8192
echo "== layer done at $SECONDS s"
TESTS_LIMIT=$((440 - SECONDS)) ab_tests .gpu/b0 .gpu/b1 .gpu/b2 .gpu/b3 .gpu/b4 .gpu/b5 .gpu/b6 .gpu/b7 .gpu/b8 .gpu/b9 .gpu/b10 .gpu/b11 .gpu/b12 .gpu/b13
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
