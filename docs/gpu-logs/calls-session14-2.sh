# session 14, call 2 (nvidia-h200-x2): the SwiGLU activation + down projection as one op (ops/swiglu_op.py),
# SPLIT_INTRA removed, the epilogue's parameter-gradient aliasing fixed. GPU 0: issue 14's same-run table.
# GPU 1: the changed kernels' GPU tests, bench/swiglu.py (whole path vs compiled, block sweep), bench/layer.py.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0; TRAIN_LIMIT=420 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline attention metala --iters 10" \
   bash bench/gpu_session.sh train > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 SAVE_CACHE=0 MASTER_PORT=29611
 TESTS_LIMIT=150 NEW_TESTS="tests/ops/test_swiglu_triton.py tests/ops/test_epilogue_triton.py tests/ops/test_mixer_triton.py tests/layers/test_model_gpu.py" \
   bash bench/gpu_session.sh new-tests > $OUT/gpu1.txt 2>&1
 timeout 100 python3 bench/swiglu.py > $OUT/swiglu.log 2>&1; echo "swiglu exit $?" >> $OUT/gpu1.txt
 timeout 200 python3 bench/layer.py --hidden 2048 --seq 2048 8192 --out $OUT/layer-main.json > $OUT/layer-main.log 2>&1
 echo "layer exit $?" >> $OUT/gpu1.txt) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "^T=|exit" | tail -10; echo ----
grep -E "passed|failed|FAILED|exit" $OUT/gpu1.txt $OUT/new-tests.log | head -20
grep -E "SWIGLU|blocks|bandwidth|Error" $OUT/swiglu.log | head -20
grep -vE "^WARNING|warn" $OUT/layer-main.log | tail -25
