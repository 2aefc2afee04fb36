# Session 31, call 1 (nvidia-h200): main + QK_K_SPLIT (written in session 30, untimed: the qk gradients' channels over 2 or 4 programs), also with the decay rows formed in the kernels (STORED_DECAY_ROWS off)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
C="chunk_qk_grads=13,19,20,21,22,23,24,25,26,27"
(PYTHONPATH=$PWD timeout 230 python3 bench/core_ncu.py --accumulate --keep-states --candidates $C > $OUT/cands-block.log 2>&1; echo "== cands block exit $?"; grep "^round" $OUT/cands-block.log)
ab_layer main $PWD 2048
ab_layer ksplit $PWD 2048 8192 --flip QK_K_SPLIT
ab_layer ksplit-formed $PWD 2048 --flip QK_K_SPLIT STORED_DECAY_ROWS
ab_layer main-again $PWD 2048
ab_core ksplit $PWD --timings --flip QK_K_SPLIT
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
