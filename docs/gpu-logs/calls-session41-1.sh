# Ran: the working tree (main 069da39 + the pairs of V blocks offered to the chained forward's autotuner)
# Session 41, call 1 (nvidia-h200, fresh): session 40's failing mixer id probed (docs/gpu-logs/pair-probe-session41.py: errors per forced chained configuration, seeds 0-2), beside every id of the three Triton test files in fourteen processes
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
(PYTHONPATH=$PWD TRITON_CACHE_DIR=$NEOX_METALA_KERNEL_CACHE/triton timeout 470 python3 docs/gpu-logs/pair-probe-session41.py > $OUT/probe.log 2>&1; echo "== probe exit $?") &
TESTS_LIMIT=470 ab_tests .gpu/a0 .gpu/a1 .gpu/a2 .gpu/a3 .gpu/a4 .gpu/a5 .gpu/a6 .gpu/a7 .gpu/a8 .gpu/a9 .gpu/a10 .gpu/a11 .gpu/a12 .gpu/a13
wait
grep PROBE $OUT/probe.log | cut -c1-120; tail -3 $OUT/probe.log | cut -c1-300
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
