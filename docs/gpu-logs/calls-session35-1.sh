# Ran: main 03e8744 (session 34's final tree) + docs/gpu-logs/chainprobe-session35.py
# Session 35, call 1 (nvidia-h200): the chained forward's probe (register caps, the chain's cost), then the final tree's GPU tests, six processes
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
timeout 170 python3 docs/gpu-logs/chainprobe-session35.py > $OUT/probe.log 2>&1; echo "probe exit $?"; cat $OUT/probe.log | grep -v Warning
TESTS_LIMIT=${LIMIT:-360} ab_tests .gpu/t1 .gpu/t2 .gpu/t3 .gpu/t4 .gpu/t5 .gpu/t6
grep -h "^FAILED\|^ERROR" $OUT/tests-*.log | head -30
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
