# Planned in session 46 for the next session's first GPU call (nvidia-h200, carry [".gpu"]; before it:
# `bash bench/gpu_prepare.sh`, `mkdir -p .gpu/variants/s45 && git archive 30eb618 neox_metala bench | tar -x -C
# .gpu/variants/s45`, `cp docs/gpu-logs/calls-session47-1-plan.sh .gpu/call1.sh`): session 46's qk kernel as shipped
# (its build 2,392 instructions, never timed on its own: session 46 timed it with the scale fold, since dropped) against
# 30eb618's, in the core at B32 T2048 and B8 T8192, alternating; then the autotuner's pick #21 against #32 (#21 capped
# at 168 registers: three programs per SM; the tree's build spills 200 B there, the fold's spilled 104 B and won 1.5%).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
CORE_LIMIT=150 ab_core s45-2048 $PWD/.gpu/variants/s45 --case 32x2048 --timings
CORE_LIMIT=100 ab_core head-2048 $PWD --case 32x2048 --timings
CORE_LIMIT=100 ab_core head-8192 $PWD --case 8x8192 --timings
CORE_LIMIT=100 ab_core s45-8192 $PWD/.gpu/variants/s45 --case 8x8192 --timings
CORE_LIMIT=150 ab_core cand-2048 $PWD --case 32x2048 --candidates chunk_qk_grads=21,32
CORE_LIMIT=120 ab_core cand-8192 $PWD --case 8x8192 --candidates chunk_qk_grads=21,32
echo "== timed by $SECONDS s"
[ $SECONDS -lt 470 ] && ab_layer head $PWD 2048 8192
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
# If #32 wins again: offer it (QK_K_SPLIT_BLOCKS takes (BV, K_SPLIT, warps, stages); a register cap needs a 5th field
# there, in metala_core_configs.kernels() and in the offered-config test ids), then its GPU ids
# (test_qk_gradients_over_channel_blocks_equal_the_recurrence[*offered*], test_qk_k_split_autotuned_in_bf16_*) and
# bench/core_configs.py --check chunk_qk_grads 32.
