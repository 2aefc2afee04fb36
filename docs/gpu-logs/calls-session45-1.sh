# Planned in session 44 for session 45's first GPU call (nvidia-h200, carry [".gpu"], `bash .gpu/call1.sh` after
# `cp docs/gpu-logs/calls-session45-1-plan.sh .gpu/call1.sh` and the id lists split into .gpu/ with
# `awk '/^== /{f=".gpu/"$2; next} /^#/{next} {print > f}' docs/gpu-logs/test-ids-session44.txt`):
# metala_core_triton.WHOLE_BATCH_STATE_GRADS (off) against the shipped backward, in the core at B8 T8192 (where the
# slices' 64 chains take the three launches and the batch's 128 the chained one) and in the block at 2048 and 8192
# (watch the T 2048 peak memory: +134 MB expected, attention's is ~3.77 GB), then its test ids and session 44's two
# unreached ones. Before the tests: docs/gpu-logs/qk-ws-probe-session44.py, the qk gradients' loads and products as a Triton
# program per chunk against Gluon persistent TMA kernels (with and without a warp-specialised loader): whether the
# direction pays before writing the real kernel in Gluon.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
CORE_LIMIT=120 ab_core shipped-8192 $PWD --case 8x8192 --timings
CORE_LIMIT=120 ab_core whole-8192 $PWD --case 8x8192 --timings --flip WHOLE_BATCH_STATE_GRADS
ab_layer shipped $PWD 2048 8192
ab_layer whole $PWD 2048 8192 --flip WHOLE_BATCH_STATE_GRADS
timeout 150 python3 docs/gpu-logs/qk-ws-probe-session44.py > $OUT/qk-ws-probe.log 2>&1; echo "== probe (exit $?)"; tail -6 $OUT/qk-ws-probe.log | cut -c1-300
echo "== timed by $SECONDS s"
TESTS_LIMIT=$((585 - SECONDS)) ab_tests .gpu/t0 .gpu/w0
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
# If it wins in the block at 8192 and holds at 2048 (time and memory): turn it on, then the block again, the deepy.py
# check (GPU_SUITE_K="exits_zero or (sigterm and 1gpu)") and the whole-model train; if not, remove it.
