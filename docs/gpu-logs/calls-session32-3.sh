# Ran: main 16b68a2 with QK_K_SPLIT = True
# Session 32, call 3 (nvidia-h200): QK_K_SPLIT on in the tree (calls 1-2: all 210 GPU test ids and the autotuned split test pass with it): the whole model against the plain compiled Transformer++ (README's GPU numbers), then the block with the switch off for the same session's comparison
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
mkdir -p $OUT/train; OUT=$OUT/train SAVE_CACHE=0 TRAIN_LIMIT=330 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train > $OUT/train.log 2>&1; grep -E "ratio|tok/s|metala|baseline" $OUT/train.log | tail -12
ab_layer unsplit $PWD 2048 8192 --flip QK_K_SPLIT
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
