# Ran: the working tree (main c2139b6 + the chained forward's V_STEPS: two V blocks of 64 per program; bench/core_configs.py's "chained" candidates; the pair tests)
# Session 39, call 5 (nvidia-h200, fresh, the session's last ~200 s): the chained forward's candidates timed in the core f+b (#0 shipped, #1 pairs capped at 168, #2 pairs uncapped), then the new pair tests
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
(PYTHONPATH=$PWD timeout 90 python3 bench/core_ncu.py --accumulate --keep-states --candidates chained=0,1,2 --rounds 2 > $OUT/cand.log 2>&1; echo "== candidates exit $?"; grep -E "^round|median" $OUT/cand.log | cut -c1-220)
TESTS_LIMIT=75 ab_tests .gpu/p0 .gpu/p1
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -10
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
