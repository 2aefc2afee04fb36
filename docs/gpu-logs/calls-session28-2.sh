# Session 28, call 2 (nvidia-h200): main 8261e4d (the working tree) against rows (.gpu/variants/rows: 8261e4d + the decay rows as G only, the log decay as G's steps; one fp32 row buffer, so two batch slices instead of four), A B A B; main at --stored-rows-mib 256 (two slices) to part the two effects
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
source bench/gpu_ab.sh
R=$PWD/.gpu/variants/rows
ab_layer main $PWD 2048
ab_layer rows $R 2048 8192
ab_layer main-256 $PWD 2048 --stored-rows-mib 256
ab_layer main-again $PWD 2048
ab_layer rows-again $R 2048
ab_core main $PWD --timings
ab_core rows $R --timings
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
