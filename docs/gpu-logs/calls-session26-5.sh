# Session 26, call 5 (nvidia-h200): main 54ef229 + CORE_A on (uncommitted): the fused-dv fp16 xfail case under compute-sanitizer initcheck (device accesses only) and racecheck, in parallel, no caching allocator
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
CS=/usr/local/cuda/bin/compute-sanitizer
T="tests/ops/test_metala_core_triton.py::test_kernels_half_precision_within_bounds[fused-dv-T70-K64-mixed-fp16]"
(PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 250 $CS --tool initcheck --check-api-memory-access no --print-limit 8 python3 -m pytest -q -rxX -p no:cacheprovider -o addopts="" "$T" > $OUT/sanitizer-initcheck-device.log 2>&1; echo "== initcheck exit $?"; grep -vE "Host Frame|^\s*$" $OUT/sanitizer-initcheck-device.log | grep -E "=====|XFAIL|XPASS|passed|failed" | head -30 | cut -c1-220) &
(PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 250 $CS --tool racecheck --racecheck-report hazard --print-limit 8 python3 -m pytest -q -rxX -p no:cacheprovider -o addopts="" "$T" > $OUT/sanitizer-racecheck.log 2>&1; echo "== racecheck exit $?"; grep -vE "Host Frame|^\s*$" $OUT/sanitizer-racecheck.log | grep -E "=====|XFAIL|XPASS|passed|failed" | head -30 | cut -c1-220) &
wait
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
