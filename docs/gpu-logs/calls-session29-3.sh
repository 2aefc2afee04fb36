# Session 29, call 3 (nvidia-h200): main 9db3935 + FAST_EXP and DV_READS_ROWS on (uncommitted, as call 2): the whole model at T=2048 and 8192 (bench/train.py, baseline and MetaLA)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
mkdir -p $OUT/train; OUT=$OUT/train SAVE_CACHE=0 TRAIN_LIMIT=500 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train 2>&1 | grep -v "^$" | grep -v "^iteration" | tail -6
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
