# Session 24, call 1 (nvidia-h200): branch session24-output-epilogue (94d7e4e: the epilogue's forward in the core's output kernel) against main 3e5a3b5
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh; M=$PWD/.gpu/variants/main
ab_layer main $M 2048 8192; ab_layer branch $PWD 2048 8192; ab_layer main-again $M 2048
TESTS_LIMIT=230 ab_tests .gpu/ids-0*
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
