# Ran: main 47a1c13 (session 42's tree, unchanged)
# Session 43, call 1 (nvidia-h200): session 42's d lists (135 ids: the formed-decays forms, the qk kernel's own tests, the rest of the mixer file, test_triton_launch's signatures) in twelve processes; then the user's deepy.py check
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=$((380 - SECONDS)) ab_tests .gpu/d0 .gpu/d1 .gpu/d2 .gpu/d3 .gpu/d4 .gpu/d5 .gpu/d6 .gpu/d7 .gpu/d8 .gpu/d9 .gpu/d10 .gpu/d11
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
echo "== tests done at $SECONDS s"
GPU_SUITE_LIMIT=$((590 - SECONDS)) GPU_SUITE_K="exits_zero or (sigterm and 1gpu)" SAVE_CACHE=0 bash bench/gpu_session.sh gpu-suite > $OUT/suite.log 2>&1; echo "== suite exit $? at $SECONDS s"; tail -5 $OUT/suite.log
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
