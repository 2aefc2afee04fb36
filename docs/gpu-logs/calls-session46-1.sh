# Session 46, call 1 (nvidia-h200, carry [".gpu"]): the qk-gradient kernel with fewer instructions (this tree: the K
# split's program ids without a division by N, the scores' scale in the e^(G - r) factors, the key formed once
# (pinned), e^log a as 1 - key, sigmoid(-x) as the key's product over the normalizer's doublings; sm90 build 2,696 ->
# 2,408 instructions, 251 -> 224 registers) against HEAD 30eb618 (.gpu/variants/main), in the core (B32 T2048, B8
# T8192, alternating order) and in the block at 2048 and 8192.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
CORE_LIMIT=150 ab_core main-2048 $PWD/.gpu/variants/main --case 32x2048 --timings
CORE_LIMIT=100 ab_core new-2048 $PWD --case 32x2048 --timings
CORE_LIMIT=100 ab_core new-8192 $PWD --case 8x8192 --timings
CORE_LIMIT=100 ab_core main-8192 $PWD/.gpu/variants/main --case 8x8192 --timings
CORE_LIMIT=100 ab_core main-2048b $PWD/.gpu/variants/main --case 32x2048 --timings
CORE_LIMIT=100 ab_core new-2048b $PWD --case 32x2048 --timings
echo "== timed by $SECONDS s"
ab_layer new $PWD 2048 8192
echo "== timed by $SECONDS s"
[ $SECONDS -lt 440 ] && ab_layer main $PWD/.gpu/variants/main 2048 8192
[ $SECONDS -lt 470 ] && ab_checks "chunk_qk_grads 21"
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
