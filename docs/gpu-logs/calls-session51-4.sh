# Session 51, call 4 (nvidia-h200, carry [".gpu"]). The shipped tree: the chained forward in groups of 16 MiB of
# carried states, the chained backward of 8 MiB (metala_core_chains.CARRIED_BYTES, CARRIED_GRAD_BYTES); the block at
# both lengths, the core alone as the block calls it, the backward's group against 16 and 4 MiB, the groups' tests.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
source bench/gpu_ab.sh
ab_layer shipped $PWD 2048 8192
echo "== timed by $SECONDS s"
for bytes in 8388608 16777216 4194304; do
    [ $SECONDS -lt 440 ] && CORE_LIMIT=80 ab_core grad-carried-$bytes $PWD --augment --timings --flip CARRIED_GRAD_BYTES=$bytes | grep -E "median|chained"
done
echo "== timed by $SECONDS s"
TESTS_LIMIT=$(( 540 - SECONDS )) ab_tests .gpu/t-groups
grep -hE "PASSED|FAILED|Error" $OUT/tests-*.log | cut -c1-250 | tail -8
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
