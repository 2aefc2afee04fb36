# Session 26, call 4 (nvidia-h200): main 54ef229 + CORE_A on (uncommitted): the fused-dv fp16 xfail case under compute-sanitizer (initcheck, memcheck), no caching allocator
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
CS=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1); echo "sanitizer: $CS"
T="tests/ops/test_metala_core_triton.py::test_kernels_half_precision_within_bounds[fused-dv-T70-K64-mixed-fp16]"
for tool in initcheck memcheck; do
  (PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 230 $CS --tool $tool --print-limit 12 --target-processes all python3 -m pytest -q -rxX -p no:cacheprovider -o addopts="" "$T" > $OUT/sanitizer-$tool.log 2>&1; echo "== $tool exit $?"; grep -E "=========|XFAIL|XPASS|passed|failed" $OUT/sanitizer-$tool.log | head -40 | cut -c1-220)
done
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
