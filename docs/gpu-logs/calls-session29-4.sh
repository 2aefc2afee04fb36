# Session 29, call 4 (nvidia-h200): main 8ea6031 + metala_core_triton.ONE_PASS_STATES (uncommitted, off: the states and their gradients each by one kernel over the chunks, ops/metala_core_state_kernels.py): the core A/B at the block's shape and the 380M model's (B8 T2048 H8, B2 T8192 H8); GPU tests of the one-pass form (49 ids in 12 files, one-pass on); the block A/B
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_core main $PWD --timings; ab_core one-pass $PWD --timings --flip ONE_PASS_STATES
ab_core main-B8H8 $PWD --timings --case 8x2048 --heads 8; ab_core one-pass-B8H8 $PWD --timings --case 8x2048 --heads 8 --flip ONE_PASS_STATES
ab_core main-B2T8192H8 $PWD --timings --case 2x8192 --heads 8; ab_core one-pass-B2T8192H8 $PWD --timings --case 2x8192 --heads 8 --flip ONE_PASS_STATES
for f in .gpu/ids-*; do (PYTHONPATH=$PWD timeout 170 python3 .gpu/onepass_pytest.py -q -p no:cacheprovider -o addopts="" $(cat $f) > $OUT/tests-$(basename $f).log 2>&1; echo "== tests $f (exit $?): $(grep -E "passed|failed" $OUT/tests-$(basename $f).log | tail -1)") & done; wait
grep -hE "^(FAILED|ERROR)" $OUT/tests-*.log | head -20
ab_layer main $PWD 2048; ab_layer one-pass $PWD 2048 --flip ONE_PASS_STATES
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
