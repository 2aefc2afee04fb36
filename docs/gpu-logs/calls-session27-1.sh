# Session 27, call 1 (nvidia-h200): main 81b509f: main against DECAY_ROWS_KERNEL on (A B A), block then core alone; rows-kernel GPU tests
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_layer main $PWD 2048; ab_layer rows-kernel $PWD 2048 8192 --flip DECAY_ROWS_KERNEL; ab_layer main-again $PWD 2048
ab_core main $PWD --timings; ab_core rows-kernel $PWD --timings --flip DECAY_ROWS_KERNEL
TESTS_LIMIT=150 ab_tests .gpu/ids-rk*
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
