# Session 50, call 3 (nvidia-h200, carry [".gpu"]: call 1's kernel cache in .gpu/cache.txz)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
export TRITON_PRINT_AUTOTUNING=1
CORE_LIMIT=200 ab_core seq-32x2048 $PWD --timings --augment
echo "== timed by $SECONDS s"
CORE_LIMIT=80 ab_core chained-32x2048 $PWD --timings --augment --flip SEQUENTIAL_CHAINS=0
echo "== timed by $SECONDS s"
CORE_LIMIT=100 ab_core seq-16x2048 $PWD --timings --augment --case 16x2048
CORE_LIMIT=80 ab_core chained-16x2048 $PWD --timings --augment --case 16x2048 --flip SEQUENTIAL_CHAINS=0
echo "== timed by $SECONDS s"
[ $SECONDS -lt 460 ] && TESTS_LIMIT=$((570 - SECONDS)) ab_tests .gpu/t-call3
echo "== timed by $SECONDS s"
grep -h "TRITON-CORE\|Error" $OUT/tests-*.log 2>/dev/null | cut -c1-300 | head -20
grep -h "best config" $OUT/core-*.log | grep -i "STAGES" | cut -c1-200 | head -12
ab_save_cache > /dev/null
cd $OUT && tar -czf /tmp/all.tgz --exclude='cache.tgz.part-*' . && find . -mindepth 1 -maxdepth 1 ! -name 'cache.tgz.part-*' -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz; ls
