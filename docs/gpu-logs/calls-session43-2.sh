# Ran: main 47a1c13 + the persistent qk gradients (QK_PERSISTENT, off by default; ops/metala_core_persistent_kernels.py)
# Session 43, call 2 (nvidia-h200): core f+b shipped; the persistent qk gradients' candidates (stored rows, then formed); then the persistent form's GPU ids (p0-p10), the fp32 channel-split failures' diagnosis, the rest of session 42's d lists (r0-r2)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_core shipped $PWD
ab_core persistent $PWD --flip QK_PERSISTENT --candidates qk_persistent=0,1,2,3,4 --rounds 1
ab_core persistent-formed $PWD --flip QK_PERSISTENT STORED_DECAY_ROWS --candidates qk_persistent=0,4 --rounds 1
echo "== timings done at $SECONDS s"
(PYTHONPATH=$PWD timeout $((560 - SECONDS)) python3 .gpu/diag_split.py > $OUT/diag.log 2>&1; echo "== diag exit $?") &
TESTS_LIMIT=$((560 - SECONDS)) ab_tests .gpu/p0 .gpu/p1 .gpu/p2 .gpu/p3 .gpu/p4 .gpu/p5 .gpu/p6 .gpu/p7 .gpu/p8 .gpu/p9 .gpu/p10 .gpu/r0 .gpu/r1 .gpu/r2
wait
grep DIAG $OUT/diag.log | cut -c1-250
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
