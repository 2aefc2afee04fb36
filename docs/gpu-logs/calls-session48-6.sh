# Session 48, call 6 (nvidia-h200, carry [".gpu"], the machine of call 3 still warm)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=105 ab_tests .gpu/t-mixer .gpu/t-fused
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
