# session 13, call 1 (nvidia-h200-x2): GPU 0 times the defaults at T=2048 (baseline, attention, MetaLA);
# GPU 1 profiles the default MetaLA step (kernels per class, top 60), then the layer benchmark at 2048/8192.
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -3 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=0; TRAIN_LIMIT=330 TRAIN_ARGS="--seqs 2048 --kinds baseline attention metala --iters 10" \
   bash bench/gpu_session.sh train > $OUT/gpu0.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 SAVE_CACHE=0; PROFILE_LIMIT=220 PROFILE_ARGS="--kinds metala --top 60" \
   bash bench/gpu_session.sh profile layer-main > $OUT/gpu1.txt 2>&1) &
wait
grep -v "^WARNING" $OUT/gpu0.txt | tail -25; echo ----; tail -70 $OUT/gpu1.txt
