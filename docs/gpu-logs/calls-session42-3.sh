# Ran: the working tree (main fa38f5d + the chained backward, its pairs of V blocks offered to its autotuner)
# Session 42, call 3 (nvidia-h200, fresh): the chained backward's candidates in the core f+b (#0 BV 128, #1 pairs capped at 168, #2 pairs uncapped); bench/layer.py's block with the default batch slices of the backward, then in one slice (--stored-rows-mib 256); then 41 ids in twelve processes (the pairs' first)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
(PYTHONPATH=$PWD timeout 130 python3 bench/core_ncu.py --accumulate --keep-states --candidates chained_grads=0,1,2 --rounds 2 > $OUT/cand.log 2>&1; echo "== candidates exit $?"; grep -E "^round|median" $OUT/cand.log | cut -c1-220)
ab_layer pairs $PWD 2048 8192
ab_layer rows256 $PWD 2048 8192 --stored-rows-mib 256
echo "== layers done at $SECONDS s"
TESTS_LIMIT=$((575 - SECONDS)) ab_tests .gpu/e0 .gpu/e1 .gpu/e2 .gpu/e3 .gpu/e4 .gpu/e5 .gpu/e6 .gpu/e7 .gpu/e8 .gpu/e9 .gpu/e10 .gpu/e11
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
