# session 14, call 3 (nvidia-h200-x2). GPU 0: bench/layer.py (issue 15's lines with the one-op mixer; no fused path:
# its fla tuning takes minutes). GPU 1: the epilogue's custom-op test (aliasing fix) and the SwiGLU kernels with the
# chosen blocks, then the step profile of the 380M MetaLA model with the SwiGLU op.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 timeout 330 python3 bench/layer.py --hidden 2048 --seq 2048 8192 --kinds metala attention metala_layer attention_layer \
   --out $OUT/layer-main.json > $OUT/layer-main.log 2>&1; echo "layer exit $?" > $OUT/gpu0.txt) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611
 TESTS_LIMIT=100 NEW_TESTS="tests/ops/test_epilogue_triton.py::test_custom_op_autograd_runs_the_kernels tests/ops/test_swiglu_triton.py" \
   bash bench/gpu_session.sh new-tests > $OUT/gpu1.txt 2>&1
 PROFILE_LIMIT=170 PROFILE_ARGS="--kinds metala --top 40" bash bench/gpu_session.sh profile >> $OUT/gpu1.txt 2>&1) &
wait
cat $OUT/gpu0.txt; grep -vE "warn|Warn" $OUT/layer-main.log | grep -A14 "== hidden"
grep -E "passed|failed|FAILED|exit" $OUT/gpu1.txt | head
grep -E "ms/step|gemm|elementwise|metala core|optimizer|idle" $OUT/profile.log | head -8
grep -A30 "ms/step" $OUT/profile.log | sed -n 7,34p
