# Session 23, call 1 (nvidia-h200): branch session22-chunk-steps (qk gradients CHUNK_STEPS chunks per program) against main f548db2
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
source bench/gpu_ab.sh; M=$PWD/.gpu/variants/main
ab_core cands $PWD --candidates chunk_qk_grads=13,19,20,21,22
ab_core branch $PWD; ab_core main $M
ab_layer main $M 2048; ab_layer branch $PWD 2048 8192
( ab_checks "chunk_qk_grads 19" "chunk_qk_grads 20" ) &
TESTS_LIMIT=170 ab_tests .gpu/ids-0*
wait
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
