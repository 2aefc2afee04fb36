# Session 26, call 1 (nvidia-h200): main 54ef229 + bench/layer.py's kernel time per kind and --trace (uncommitted): main (CORE_A off) against CORE_A on; timelines' gaps; the fp16 defect with stored rows off; mixer GPU tests
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_layer main $PWD 2048 --trace $OUT/trace-main; ab_layer core-a $PWD 2048 8192 --flip CORE_A; ab_layer main-again $PWD 2048
for f in $OUT/trace-main/*.json; do python3 bench/trace_gaps.py $f --top 12; done
(PYTHONPATH=$PWD timeout 60 python3 .gpu/fp16diag.py > $OUT/fp16diag.log 2>&1; echo "== fp16diag exit $?"; grep FP16DIAG $OUT/fp16diag.log | cut -c1-250)
TESTS_LIMIT=170 ab_tests .gpu/ids-0*
gzip $OUT/trace-main/*.json
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
