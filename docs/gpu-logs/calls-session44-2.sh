# Session 44, call 2 (nvidia-h200, carry [".gpu"]): the tree without CHAINED_QK (shipped code as 6a3f4a6): the whole
# model against the plain Transformer++ (first since session 42's chained backward), then the s0 ids (19 GPU ids of
# session 42's d lists never reached) in five processes.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
mkdir -p $OUT/train; OUT=$OUT/train SAVE_CACHE=0 TRAIN_LIMIT=300 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train > $OUT/train.log 2>&1; grep -E "ratio|T=|exit" $OUT/train.log | sort -u | tail -10
echo "== train done at $SECONDS s"
TESTS_LIMIT=$((580 - SECONDS)) ab_tests .gpu/s0-0 .gpu/s0-1 .gpu/s0-2 .gpu/s0-3 .gpu/s0-4
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
