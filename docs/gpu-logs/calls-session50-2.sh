# Session 50, call 2 (nvidia-h200, carry [".gpu"]: call 1's kernel cache in .gpu/cache.tgz.part-*)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
export TRITON_PRINT_AUTOTUNING=1
CORE_LIMIT=170 ab_core seq2048 $PWD --timings --augment --flip SEQUENTIAL_FORWARD
echo "== timed by $SECONDS s"
CORE_LIMIT=80 ab_core gluon2048 $PWD --timings --augment
CORE_LIMIT=80 ab_core triton2048 $PWD --timings --augment --flip GLUON_CHAINED_FORWARD
echo "== timed by $SECONDS s"
[ $SECONDS -lt 330 ] && CORE_LIMIT=120 ab_core seq8192 $PWD --timings --augment --case 8x8192 --flip SEQUENTIAL_FORWARD
[ $SECONDS -lt 420 ] && CORE_LIMIT=80 ab_core triton8192 $PWD --timings --augment --case 8x8192 --flip GLUON_CHAINED_FORWARD
echo "== timed by $SECONDS s"
[ $SECONDS -lt 480 ] && TESTS_LIMIT=$((575 - SECONDS)) ab_tests .gpu/t-call2
echo "== timed by $SECONDS s"
grep -h "GLUON-CHAINED\|TRITON-CORE\|Error" $OUT/tests-*.log 2>/dev/null | cut -c1-300 | head -20
grep -h "best config" $OUT/core-*.log | grep -i "BV\|STAGES" | cut -c1-250 | head -12
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
