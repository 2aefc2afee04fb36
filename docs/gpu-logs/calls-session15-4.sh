# session 15, call 4 (nvidia-h200-x2): the committed code (epilogue backward (8, 4) at 3 stages, conv dpre 3 stages,
# no one-form launches) as a whole model, issue 14's rows: GPU 0 at T=2048 (baseline, attention, MetaLA), GPU 1 at
# T=8192 (baseline, MetaLA), each T's ratios from one run on one GPU.
# (As run, GPU 1 did nothing: `> $OUT/gpu1.txt` expanded to $OUT/gpu1/gpu1.txt, a folder gpu_session.sh had not yet
# created. Set OUT for gpu_session.sh on its own command, not by export, next time.)
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0
 TRAIN_LIMIT=300 TRAIN_ARGS="--seqs 2048 --kinds baseline attention metala --iters 10" bash bench/gpu_session.sh train > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611 SAVE_CACHE=0 OUT=$OUT/gpu1
 TRAIN_LIMIT=300 TRAIN_ARGS="--seqs 8192 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt $OUT/gpu1.txt | grep -E "T=|exit" | tail -10
