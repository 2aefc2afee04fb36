# session 16, call 4 (nvidia-h200-x2): the committed code — block norms back on inductor's fused kernels (the norm op
# of calls 2-3 lost ~11 ms per step), the loss's one-kernel cross-entropy, the residual in the down projection's GEMM,
# STORED_DECAY_ROWS on. GPU 0: T=8192 (baseline, MetaLA); GPU 1: T=2048 (baseline, attention, MetaLA).
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 TRAIN_LIMIT=230 TRAIN_ARGS="--seqs 8192 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0
 mkdir -p $OUT/gpu1 && OUT=$OUT/gpu1 TRAIN_LIMIT=230 TRAIN_ARGS="--seqs 2048 --kinds baseline metala attention --iters 10" bash bench/gpu_session.sh train > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt $OUT/gpu1.txt | grep -E "T=|exit" | tail -10
