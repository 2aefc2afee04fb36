# Ran: main 1dda0b0 + docs/gpu-logs/qk-multi-prototype-session35.diff applied (untracked neox_metala/ops/_qk_multi.py)
# Session 36, call 1 (nvidia-h200): session 35's multi-chunk qk/dv probe, then the 19 GPU ids session 35 did not reach
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
timeout 330 python3 docs/gpu-logs/qkmulti-probe-session35.py > $OUT/probe.log 2>&1; echo "probe exit $? after $(( $(date +%s) - t0 )) s"
grep -v Warning $OUT/probe.log | tail -30
left=$(( 520 - ($(date +%s) - t0) ))
echo "tests limit $left"
TESTS_LIMIT=$left ab_tests .gpu/s1 .gpu/s2 .gpu/s3 .gpu/s4
grep -h "^FAILED\|^ERROR\|PASSED\|SKIPPED" $OUT/tests-*.log | cut -c1-200 | head -40
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
