# Session 21, call 1 (nvidia-h200): candidates timed one at a time in the block's build (bench/core_ncu.py
# --candidates, B32 T2048 H16, kept states, accumulate; two rounds in opposite orders): the qk gradients at 16 warps
# (13 = shipped BV 64, 8 warps, 3 stages), the output kernel at 16 warps (0, 1 = shipped 4 / 8 warps), the state
# updates and state-gradient updates stepping through V (V_STEPS; 5 and 8 = the shipped picks).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
c() {  # c NAME CANDIDATES...
  name=$1; shift
  timeout 200 python3 bench/core_ncu.py --accumulate --keep-states --candidates "$@" > $OUT/cand-$name.log 2>&1
  echo "== $name (exit $?)"; grep -E "^round|rror|illegal" $OUT/cand-$name.log | cut -c1-220
}
c qk chunk_qk_grads=13,15,16,17,18
c updates state_updates=5,11,12,14,16,17,15 state_grad_updates=8,11,12,13,16,15
c output output=0,1,10,11
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
