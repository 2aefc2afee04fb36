# Session 47, call 4 (the tree, 176e89d): the whole 380M model against the plain Transformer++ (first since session
# 44), then the block at T 8192 with the kinds' runs interleaved, as time allows.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
mkdir -p $OUT/train; OUT=$OUT/train SAVE_CACHE=0 TRAIN_LIMIT=320 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train > $OUT/train.log 2>&1; grep -E "ratio|T=|exit" $OUT/train.log | sort -u | tail -10
echo "== train done at $SECONDS s"
[ $SECONDS -lt 420 ] && ab_layer interleaved $PWD 8192 --interleave
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
