# Session 25, call 1 (nvidia-h200): main 6c910f5 + CORE_AUG uncommitted (committed next as the merge of this session), against main; variant nostored = that tree with STORED_DECAY_ROWS False; conv at the 380M shape; fp16 fused-dv diagnosis (lost: no PYTHONPATH); mixer and epilogue GPU tests
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh; M=$PWD/.gpu/variants/main; N=$PWD/.gpu/variants/nostored
ab_layer main $M 2048; ab_layer augqk $PWD 2048 8192; ab_layer nostored $N 2048; ab_layer main-again $M 2048
timeout 100 python3 bench/conv.py --cases 8x2048x1024 > $OUT/conv-model.log 2>&1; echo "== conv exit $?"; tail -25 $OUT/conv-model.log
timeout 60 python3 .gpu/fp16diag.py > $OUT/fp16diag.log 2>&1; echo "== fp16diag exit $?"; grep FP16DIAG $OUT/fp16diag.log | cut -c1-250
TESTS_LIMIT=140 ab_tests .gpu/ids-0*
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
