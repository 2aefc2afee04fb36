# Session 50, call 5 (nvidia-h200, carry [".gpu"]: call 3's kernel cache in .gpu/cache.txz)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=$((265 - SECONDS)) ab_tests .gpu/t-fused
echo "== timed by $SECONDS s"
grep -hE "PASSED|FAILED|relative|error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
