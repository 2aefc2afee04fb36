# Session 51, call 3 (nvidia-h200, carry [".gpu"]). The chained launches with their chains in groups whose carried
# states fit the L2 (metala_core_chains.CARRIED_BYTES, 16 MiB: 256 batch·heads at K64 V128) against one group (the
# launches as before: CARRIED_BYTES=1 GiB), in the block and in the core alone; then the GPU tests of the chained
# launches (.gpu/t-groups: the groups test, the pairs at model widths, the fused path's gradients).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
source bench/gpu_ab.sh
ab_layer grouped $PWD 2048 8192
echo "== timed by $SECONDS s"
for bytes in 1073741824 16777216 8388608 25165824; do
    CORE_LIMIT=90 ab_core carried-$bytes $PWD --augment --timings --flip CARRIED_BYTES=$bytes | grep -E "median|chained"
done
echo "== timed by $SECONDS s"
[ $SECONDS -lt 360 ] && ab_layer ungrouped $PWD 2048 --flip CARRIED_BYTES=1073741824
echo "== timed by $SECONDS s"
TESTS_LIMIT=$(( 560 - SECONDS )) ab_tests .gpu/t-groups
grep -hE "passed|failed|PASSED|FAILED|Error" $OUT/tests-*.log | cut -c1-250 | tail -12
echo "== timed by $SECONDS s"
ab_save_cache > /dev/null
cd $OUT && tar -czf /tmp/all.tgz --exclude='cache.tgz.part-*' . && find . -mindepth 1 -maxdepth 1 ! -name 'cache.tgz.part-*' -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz; ls
