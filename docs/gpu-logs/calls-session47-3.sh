# Session 47, call 3 (the tree, 176e89d): session 46's 11 GPU test ids that its call 4 cut (one process each), then
# the user's deepy.py check (1 GPU: exits 0; SIGTERM).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=230 ab_tests .gpu/t0 .gpu/t1 .gpu/t2 .gpu/t3 .gpu/t4 .gpu/t5 .gpu/t6 .gpu/t7 .gpu/t8 .gpu/t9 .gpu/t10
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -10
echo "== timed by $SECONDS s"
GPU_SUITE_LIMIT=$((570 - SECONDS)) GPU_SUITE_K="exits_zero or (sigterm and 1gpu)" SAVE_CACHE=0 bash bench/gpu_session.sh gpu-suite > $OUT/suite.log 2>&1; echo "== suite exit $? at $SECONDS s"; tail -5 $OUT/suite.log
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
