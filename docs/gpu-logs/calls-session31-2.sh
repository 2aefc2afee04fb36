# Session 31, call 2 (nvidia-h200): QK_K_SPLIT at 4 warps (call 1: #21, K_SPLIT 2 at 4 warps, 1294 -> 1210 us per step; #24 an illegal address), its neighbours timed, fp64 checks at T 1-300 (4-warp builds: T < 64), the block with the switch
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
C="chunk_qk_grads=13,21,28,29,30,31,25,27,26"
(PYTHONPATH=$PWD timeout 200 python3 bench/core_ncu.py --accumulate --keep-states --candidates $C > $OUT/cands-block.log 2>&1; echo "== cands block exit $?"; grep "^round" $OUT/cands-block.log)
ab_layer ksplit-4w $PWD 2048 8192 --flip QK_K_SPLIT
ab_checks "chunk_qk_grads 21" "chunk_qk_grads 28" "chunk_qk_grads 29" "chunk_qk_grads 30" "chunk_qk_grads 24"
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
