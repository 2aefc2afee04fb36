# Session 29, call 1 (nvidia-h200): main 9db3935: FAST_EXP, DV_READS_ROWS and one backward slice against main
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_layer main $PWD 2048; ab_layer fast-exp $PWD 2048 --flip FAST_EXP; ab_layer dv-rows $PWD 2048 --flip DV_READS_ROWS
ab_layer both $PWD 2048 8192 --flip FAST_EXP DV_READS_ROWS
ab_layer all-one-slice $PWD 2048 --flip FAST_EXP DV_READS_ROWS --stored-rows-mib 256; ab_layer main-again $PWD 2048
ab_core main $PWD --timings; ab_core both $PWD --timings --flip FAST_EXP DV_READS_ROWS
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
