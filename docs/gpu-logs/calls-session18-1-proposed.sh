# Proposed first call of session 18 (nvidia-h200-x2; copy to .gpu/call1.sh): issue 15's block bench, which hit its
# 200 s limit cold in session 17 (GPU 0: the two kinds only, 420 s; it prints each measurement as it lands),
# and issue 14's T=8192 row re-measured on the lent machine with the step profile (GPU 1).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
(export CUDA_VISIBLE_DEVICES=0
 LAYER_LIMIT=420 LAYER_ARGS="--kinds metala attention" bash bench/gpu_session.sh layer-main > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 mkdir -p $OUT/gpu1 && OUT=$OUT/gpu1 TRAIN_LIMIT=240 TRAIN_ARGS="--seqs 8192 --kinds baseline metala --iters 10" \
   PROFILE_LIMIT=120 PROFILE_ARGS="--kinds metala --seq 8192 --top 60" \
   bash bench/gpu_session.sh train profile > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | grep -E "measured|ratio|share|floor|exit" | tail -20; echo ----
grep -E "^T=|exit|== metala" $OUT/gpu1.txt | head -10
