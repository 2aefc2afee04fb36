# Session 50, call 1 (nvidia-h200, carry [".gpu"])
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
python3 bench/gluon_build.py --kernels chained_forward_kernel 2>&1 | tail -2
(TESTS_LIMIT=360 ab_tests .gpu/t-chained .gpu/t-model) > $OUT/tests-summary.txt 2>&1 &
CORE_LIMIT=200 ab_core gluon $PWD --timings --augment
echo "== timed by $SECONDS s"
CORE_LIMIT=150 ab_core triton $PWD --timings --augment --flip GLUON_CHAINED_FORWARD
echo "== timed by $SECONDS s"
[ $SECONDS -lt 420 ] && CORE_LIMIT=100 ab_core uncapped $PWD --timings --augment --flip GLUON_CHAINED_REGISTERS=0
wait; cat $OUT/tests-summary.txt
echo "== timed by $SECONDS s"
grep -h "GLUON-CHAINED\|Error\|error" $OUT/tests-*.log | cut -c1-300 | head -30
ab_save_cache > /dev/null
cd $OUT && tar -czf /tmp/all.tgz --exclude='cache.tgz.part-*' . && find . -mindepth 1 -maxdepth 1 ! -name 'cache.tgz.part-*' -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz; ls
