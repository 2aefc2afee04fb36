# Session 50, call 4 (nvidia-h200, carry [".gpu"]: call 3's kernel cache in .gpu/cache.txz)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_layer sequential $PWD 2048 8192
echo "== timed by $SECONDS s"
[ $SECONDS -lt 380 ] && ab_layer chained $PWD 2048 --flip SEQUENTIAL_FORWARD=0
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
