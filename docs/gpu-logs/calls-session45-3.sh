# Session 45, call 3 (final tree): the block at T 8192 with the backward in one slice (--stored-rows-mib 256; the
# memory line is at T 2048 only), then the user's deepy.py check.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_layer rows256 $PWD 8192 --stored-rows-mib 256
echo "== timed by $SECONDS s"
GPU_SUITE_LIMIT=$((560 - SECONDS)) GPU_SUITE_K="exits_zero or (sigterm and 1gpu)" SAVE_CACHE=0 bash bench/gpu_session.sh gpu-suite > $OUT/suite.log 2>&1; echo "== suite exit $? at $SECONDS s"; tail -5 $OUT/suite.log
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
