# Ran: main 16b68a2 with QK_K_SPLIT = True and bench/core_configs.py candidates #32-33 added
# Session 32, call 4 (nvidia-h200): the qk gradients' split capped at 168 registers (three 4-warp programs per SM: bench/core_configs.py's new #32 BV 64, #33 BV 32) and #31 (4 stages) against #13 (unsplit) and #21 (the shipped split), at the block's shape
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
(PYTHONPATH=$PWD timeout 330 python3 bench/core_ncu.py --accumulate --keep-states --candidates chunk_qk_grads=13,21,32,33,31 > $OUT/cands.log 2>&1; echo "== cands exit $?"; grep "^round\|Error" $OUT/cands.log)
