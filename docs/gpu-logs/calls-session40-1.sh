# Ran: the working tree (main 069da39 + the pairs of V blocks offered to the chained forward's autotuner)
# Session 40, call 1 (nvidia-h200, fresh): the chained forward's candidates timed in the core f+b (#0 BV 128, #1 pairs capped at 168, #5 pairs at 8 warps), then every id of the three Triton test files in fourteen processes
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
(PYTHONPATH=$PWD timeout 120 python3 bench/core_ncu.py --accumulate --keep-states --candidates chained=0,1,5 --rounds 2 > $OUT/cand.log 2>&1; echo "== candidates exit $?"; grep -E "^round|median" $OUT/cand.log | cut -c1-220)
TESTS_LIMIT=400 ab_tests .gpu/a0 .gpu/a1 .gpu/a2 .gpu/a3 .gpu/a4 .gpu/a5 .gpu/a6 .gpu/a7 .gpu/a8 .gpu/a9 .gpu/a10 .gpu/a11 .gpu/a12 .gpu/a13
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
