# Session 28, call 1 (nvidia-h200): main a9f26b0 (the working tree) — EPILOGUE_IN_CORE and 128-token chunks against main (A B C A), block and core alone
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
source bench/gpu_ab.sh
ab_layer main $PWD 2048
ab_layer epilogue-in-core $PWD 2048 8192 --flip EPILOGUE_IN_CORE
ab_layer chunk128 $PWD 2048 8192 --chunk-size 128
ab_layer both $PWD 2048 --chunk-size 128 --flip EPILOGUE_IN_CORE
ab_layer main-again $PWD 2048 8192
ab_core main $PWD --timings
ab_core chunk128 $PWD --timings --chunk-size 128
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
