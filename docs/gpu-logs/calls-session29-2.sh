# Session 29, call 2 (nvidia-h200): main 9db3935 + FAST_EXP and DV_READS_ROWS on (uncommitted): GPU tests of the core, the one op and the epilogue on the default (stored-rows) form (119 ids in 12 files, both dtypes), the default path against fp64 (test_fused_gpu, bf16 self-aug T63)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
(timeout 300 python3 -m pytest -s -p no:cacheprovider -o addopts="" tests/ops/test_fused_gpu.py -k "test_paths_equal_reference and bf16 and self-aug and not no-self-aug and T63" > $OUT/fused-gpu.log 2>&1; echo "== fused-gpu exit $?"; grep -E "GPU-ERR default-.*|passed|failed" $OUT/fused-gpu.log | tail -12) &
TESTS_LIMIT=450 ab_tests .gpu/ids-*
wait
grep -hE "^(FAILED|ERROR)" $OUT/tests-*.log | head -20
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
