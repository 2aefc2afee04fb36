# Session 53's first GPU call (nvidia-h200, carry [".gpu"] after `bash bench/gpu_prepare.sh`; LIMIT: the call's
# seconds, default 575): the out projection's input gradient with the epilogue backward fused into a Triton GEMM
# (ops/out_grad_op.py) against cuBLAS + the epilogue kernel, per configuration; the block with the fused op
# (ops/mixer_out_op.py; --flip FUSED, off by default until this call) against the block without it, in turns; then
# the GPU tests of the new kernel, the op and the epilogue (its math moved into _row_grads), and the model's with the
# fused op on.
LIMIT=${LIMIT:-575}
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
timeout 170 python3 bench/out_grad.py --runs 10 > $OUT/out-grad.log 2>&1; echo "== out_grad exit $? at $SECONDS s"
grep -v -i warn $OUT/out-grad.log | cut -c1-400
# the block with the fastest configuration (this machine's copy of the tree)
best=$(grep -oP "^best \K\([^)]*\)" $OUT/out-grad.log)
[ -n "$best" ] && sed -i "s/^CONFIG = .*/CONFIG = $best/" neox_metala/ops/out_grad_op.py && grep "^CONFIG" neox_metala/ops/out_grad_op.py
if [ $((LIMIT - SECONDS)) -gt 330 ]; then
    ab_layer fused $PWD 2048 8192 --interleave --flip FUSED
else
    ab_layer fused $PWD 2048 --interleave --flip FUSED
fi
[ $((LIMIT - SECONDS)) -gt 150 ] && ab_layer unfused $PWD 2048 --interleave
echo "== at $SECONDS s"
# the model-level GPU tests below with the fused op on (this machine's copy of the tree)
sed -i "s/^FUSED = False/FUSED = True/" neox_metala/ops/mixer_out_op.py && grep "^FUSED" neox_metala/ops/mixer_out_op.py
TRITON_CACHE_DIR=$NEOX_METALA_KERNEL_CACHE/triton timeout $((LIMIT - SECONDS)) python3 -m pytest -v -p no:cacheprovider \
    -o addopts="" tests/ops/test_out_grad_triton.py tests/ops/test_mixer_triton.py::test_out_op_equals_the_reference \
    "tests/layers/test_model_gpu.py::test_bf16_fast_kernels_match_cpu_fp32[own-epilogue]" \
    "tests/layers/test_model_gpu.py::test_compiled_metala_block_is_one_graph_on_the_gpu[triton]" \
    tests/ops/test_epilogue_triton.py > $OUT/tests.log 2>&1
echo "== tests exit $? at $SECONDS s: $(grep -c " PASSED" $OUT/tests.log) passed, $(grep -c " FAILED" $OUT/tests.log) failed"
grep -E " FAILED|[0-9]+ (passed|failed)|^E " $OUT/tests.log | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
