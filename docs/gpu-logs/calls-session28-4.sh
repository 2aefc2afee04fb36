# Session 28, call 4 (nvidia-h200): main 8261e4d + the decay rows as G only (uncommitted, as call 3): the 7 GPU tests call 3's time limit cut, one process each; then the whole model at T=2048 (bench/train.py, baseline and MetaLA)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=200 ab_tests .gpu/ids-?
grep -hE "^(FAILED|ERROR)" $OUT/tests-*.log | head -20
mkdir -p $OUT/train; OUT=$OUT/train SAVE_CACHE=0 TRAIN_LIMIT=200 TRAIN_ARGS="--seqs 2048 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train 2>&1 | grep -v "^$" | grep -v "^iteration" | tail -4
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
