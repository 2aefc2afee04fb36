# Session 46, call 2 (nvidia-h200, carry [".gpu"]): this tree's qk kernel (call 1: 513 against 529 us per launch) at
# its autotuner's pick (#21: BV 64, K_SPLIT 2, 4 warps, 3 stages; 224 registers) against #32 (the same capped at 168
# registers: 104 B spilled, three programs per SM, 64 KB of shared memory each), at B32 T2048 and B8 T8192; then the
# GPU ids of the qk kernel and the one op (.gpu/q0-q11, twelve processes).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
CORE_LIMIT=150 ab_core cand-2048 $PWD --case 32x2048 --candidates chunk_qk_grads=21,32
CORE_LIMIT=120 ab_core cand-8192 $PWD --case 8x8192 --candidates chunk_qk_grads=21,32
echo "== timed by $SECONDS s"
TESTS_LIMIT=$((575 - SECONDS)) ab_tests .gpu/q0 .gpu/q1 .gpu/q2 .gpu/q3 .gpu/q4 .gpu/q5 .gpu/q6 .gpu/q7 .gpu/q8 .gpu/q9 .gpu/q10 .gpu/q11
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
