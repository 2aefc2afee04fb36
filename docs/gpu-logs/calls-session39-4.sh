# Ran: the working tree as calls 1-3 (main 7661040 + the kernels' log1p as a degree-8 polynomial)
# Session 39, call 4 (nvidia-h200): the user's deepy.py on one GPU (exits soon after its last iteration; SIGTERM saves and exits 0), then the whole model against the plain compiled Transformer++
OUT0=$OUT
GPU_SUITE_LIMIT=200 GPU_SUITE_K="exits_zero or (sigterm and 1gpu)" SAVE_CACHE=0 bash bench/gpu_session.sh gpu-suite > $OUT/suite.log 2>&1; grep -E "install took|gpu-suite|1gpu \||passed|failed" $OUT/suite.log | tail -8
mkdir -p $OUT/train; OUT=$OUT/train SAVE_CACHE=0 TRAIN_LIMIT=300 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train > $OUT/train.log 2>&1; grep -E "ratio|T=" $OUT/train.log | sort -u | tail -8
cd $OUT0 && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
