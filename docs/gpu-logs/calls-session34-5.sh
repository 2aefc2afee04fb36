# Ran: main 79b8389 + the chained forward with BV 128 at 4 warps offered (uncommitted, as call 4)
# Session 34, call 5 (nvidia-h200): four GPU tests of the chained forward (bf16 at the model's widths against fp64 with kept and recomputed states equal; the one op with self-augmentation against fp64; the custom op recomputing), one process each
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=135 ab_tests .gpu/c5-a .gpu/c5-b .gpu/c5-c .gpu/c5-d
grep -h "^FAILED\|Error\|^E " $OUT/tests-*.log | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
