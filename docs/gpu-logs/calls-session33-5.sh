# Ran: main c613c82 with the untimed forms removed (kernels as 4a399d3's) and session 33's new GPU cases (the offered split at V 96 and 192; the autotuned split at V 96)
# Session 33, call 5 (nvidia-h200): the GPU tests of the qk gradients' channel split as offered (forced, every offered shape incl. the new V 96 / V 192) and autotuned (V 32-128, three runs each), and the one op's split test
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=400 ab_tests .gpu/new-offered .gpu/new-aut1 .gpu/new-aut2 .gpu/new-mixer
grep -h "^FAILED\|Error" $OUT/tests-*.log | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
