# Session 24, call 4 (nvidia-h200): main 8f9f238 (the one-pass states reverted): the fp16 core tests that call 3 cut or failed (one F with the one-pass states), and the direct-launch counts
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=150 ab_tests .gpu/ids4-*
grep -hE "^FAILED|^E  " $OUT/tests-*.log | head -20
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
