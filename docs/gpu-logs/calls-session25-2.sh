# Session 25, call 2 (nvidia-h200): working tree = main 6c910f5 + CORE_AUG (uncommitted; call 1's augqk): whole model against the plain baseline at T=2048; GPU tests of the mixer (4 processes) and the core's slices / autotuner keys / model widths; fp16 fused-dv diagnosis
mkdir -p $OUT/train; OUT=$OUT/train SAVE_CACHE=0 TRAIN_LIMIT=290 TRAIN_ARGS="--seqs 2048 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train 2>&1 | grep -v "^$" | tail -25
source bench/gpu_ab.sh
(timeout 60 env PYTHONPATH=$PWD python3 .gpu/fp16diag.py > $OUT/fp16diag.log 2>&1; echo "== fp16diag exit $?"; grep FP16DIAG $OUT/fp16diag.log | cut -c1-250) &
TESTS_LIMIT=190 ab_tests .gpu/ids-0*; wait
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
