# session 15, call 3 (nvidia-h200-x2): the code after call 2 (dv's factorised list without BV <= 32 at 4 warps).
# GPU 0: the step profile of the 380M MetaLA model (where a 1.5x at 8192 would have to come from), then
# bench/layer.py (issue 15's lines). GPU 1: the factorised kernels' candidates and SPLIT_FORMS against the other
# backward forms in one process, then the core's GPU tests of that form at the model's widths and in half precision.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 PROFILE_LIMIT=170 PROFILE_ARGS="--kinds metala --top 40" bash bench/gpu_session.sh profile > $OUT/gpu0.txt 2>&1
 timeout 250 python3 bench/layer.py --hidden 2048 --seq 2048 8192 --kinds metala attention metala_layer attention_layer \
   --out $OUT/layer-main.json > $OUT/layer-main.log 2>&1; echo "layer exit $?" >> $OUT/gpu0.txt) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 CORE_CONFIGS_LIMIT=230 CORE_CONFIGS_ARGS="--kernels chunk_qk_grads_factorised chunk_dv_factorised --cases 8x2048" bash bench/gpu_session.sh core-configs > $OUT/gpu1.txt 2>&1
 TESTS_LIMIT=150 NEW_TESTS="tests/ops/test_metala_core_triton.py" NEW_TESTS_K="split-dv-forms and (model_widths or half_precision)" \
   bash bench/gpu_session.sh new-tests >> $OUT/gpu1.txt 2>&1) &
wait
cat $OUT/gpu0.txt | grep -E "ms/step|gemm|elementwise|metala core|optimizer|idle|exit" | head -12
grep -A34 "ms/step" $OUT/profile.log | sed -n 7,40p
grep -vE "^WARNING|warn" $OUT/layer-main.log | grep -A14 "== hidden" | head -40
grep -E "CONFIGS|FAILED|best|no correct|exit" $OUT/core-configs.log | grep -v "^WARNING" | tail -16
grep -E "passed|failed|FAILED|exit" $OUT/gpu1.txt $OUT/new-tests.log | tail -5
