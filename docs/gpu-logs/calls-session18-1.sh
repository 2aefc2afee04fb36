# Session 18, call 1 (nvidia-h200-x2): issue 15's block bench at both lengths in parallel, one GPU each (the input's
# gradient now returned as a model passes it on, bench/layer.py's Timer.step).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
(export CUDA_VISIBLE_DEVICES=0
 LAYER_LIMIT=430 LAYER_ARGS="--kinds metala attention --seq 2048" bash bench/gpu_session.sh layer-main > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 mkdir -p $OUT/gpu1 && OUT=$OUT/gpu1 LAYER_LIMIT=430 LAYER_ARGS="--kinds metala attention --seq 8192" \
   bash bench/gpu_session.sh layer-main > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "measured|ratio|share|floor|exit|ms \(" | tail -20; echo ----
grep -v "^WARNING" $OUT/gpu1.txt | grep -E "measured|ratio|share|floor|exit|ms \(" | tail -20
