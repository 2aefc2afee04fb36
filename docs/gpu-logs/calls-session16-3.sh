# session 16, call 3 (nvidia-h200-x2): the RMS norm's backward as one program per tile (the persistent form of call 2
# ran at 2-4x its byte floor). GPU 0: the norm and loss tests, the norm bench, a T=8192 step profile. GPU 1: issue
# 14's same-run table, T=8192 first.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 TESTS_LIMIT=120 NEW_TESTS="tests/ops/test_rms_norm_triton.py tests/ops/test_cross_entropy_triton.py tests/model/test_loss.py" \
 NORM_LIMIT=100 PROFILE_LIMIT=170 PROFILE_ARGS="--kinds metala --seq 8192" \
   bash bench/gpu_session.sh norm new-tests profile > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611
 TRAIN_LIMIT=420 TRAIN_ARGS="--seqs 8192 2048 --kinds baseline metala attention --iters 10" bash bench/gpu_session.sh train > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu1.txt | grep -E "^T=|exit" | tail -10; echo ----
grep -E "passed|failed|FAILED|exit|Error|NORM|blocks|default" $OUT/gpu0.txt | head -30
sed -n '/== metala/,/host (self/p' $OUT/profile.log | head -45
