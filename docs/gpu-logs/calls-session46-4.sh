# Session 46, call 4 (nvidia-h200, carry [".gpu"]): the final tree (call 2's tree without the scale folded into
# e^(G - r), whose bf16 rounding put one d-logits error over its bound; call 3): the qk
# kernel's bf16 ids first (.gpu/r0-r11, twelve processes) for what time is left.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh

echo "== timed by $SECONDS s"
TESTS_LIMIT=$((215 - SECONDS)) ab_tests .gpu/r0 .gpu/r1 .gpu/r2 .gpu/r3 .gpu/r4 .gpu/r5 .gpu/r6 .gpu/r7 .gpu/r8 .gpu/r9 .gpu/r10 .gpu/r11
grep -h -c " PASSED" $OUT/tests-*.log | paste -sd+ | bc | sed "s/^/passed: /"
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -10
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
