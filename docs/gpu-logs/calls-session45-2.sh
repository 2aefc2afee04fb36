# Session 45, call 2: WHOLE_BATCH_STATE_GRADS "auto" (on where only the whole batch takes the chained backward): the
# block at 2048 (should be the sliced backward's time and peak) and 8192 (the whole batch's), then its GPU ids.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
CORE_LIMIT=120 ab_core auto-8192 $PWD --case 8x8192 --timings
ab_layer auto $PWD 2048 8192
echo "== timed by $SECONDS s"
TESTS_LIMIT=$((580 - SECONDS)) ab_tests .gpu/x0 .gpu/w0
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
