# Planned in session 47 for the next session's first GPU call (nvidia-h200, carry [".gpu"]; before it:
# `bash bench/gpu_prepare.sh`, `cp docs/gpu-logs/calls-session48-1-plan.sh .gpu/call1.sh`): the Gluon qk-gradient
# probe (docs/gpu-logs/qk-gluon-probe-session47.py: its sm90 build 208 registers, 2,056 instructions, 8 barriers,
# against the shipped kernel's 236, 2,392 and ~40) checked against the shipped backward and a PyTorch twin of its
# arithmetic, then timed against the shipped launch at the block's batch slice (B16 T2048 H16 bf16), twice.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
for round in 1 2; do
    timeout 240 python3 docs/gpu-logs/qk-gluon-probe-session47.py > $OUT/gluon-probe-$round.log 2>&1
    echo "== probe round $round (exit $?)"; tail -8 $OUT/gluon-probe-$round.log | cut -c1-400
done
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
# If the Gluon kernel is right (norm-relative ≤ ~5e-3 against the shipped backward, like the shipped kernel against
# the twin) and ≥ 1.2x faster: time it in the core (bench/core_ncu.py) by a switch in metala_core_triton's qk launch,
# then the block; its GPU tests as the shipped kernel's (tests/ops/test_metala_core_triton.py's qk ids in bf16).
