# Planned in session 43 for session 44's first GPU call (nvidia-h200, carry [".gpu"], `bash .gpu/call1.sh` after
# `cp docs/gpu-logs/calls-session44-1.sh .gpu/call1.sh` (it ran as planned) and the q lists of docs/gpu-logs/test-ids-session43.txt
# split into .gpu/q0-q11 with the awk line of the session notes): the chained backward with the qk gradients
# (metala_core_triton.CHAINED_QK, off) against the shipped backward in the core and the block, then its GPU ids.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
CORE_LIMIT=120 ab_core shipped $PWD
CORE_LIMIT=120 ab_core chainedqk $PWD --flip CHAINED_QK --timings
CORE_LIMIT=150 ab_core chainedqk-cands $PWD --flip CHAINED_QK --candidates chained_qk_grads=0,1,3,4 --rounds 1
echo "== core done at $SECONDS s"
TESTS_LIMIT=$((585 - SECONDS)) ab_tests .gpu/q0 .gpu/q1 .gpu/q2 .gpu/q3 .gpu/q4 .gpu/q5 .gpu/q6 .gpu/q7 .gpu/q8 .gpu/q9 .gpu/q10 .gpu/q11
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
# Call 2, if the flipped core is faster: ab_layer shipped $PWD 2048 8192; ab_layer chainedqk $PWD 2048 8192 --flip CHAINED_QK
