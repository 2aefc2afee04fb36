# Code: the working tree of the time (CHUNK_STEPS, measured and dropped; not in the repository).
# Session 21, call 3 (nvidia-h200): programs that take CHUNK_STEPS chunks in turn (the next chunk's loads issued
# by the loop's pipelining), for the output kernel and the two update kernels; one candidate at a time in the
# block's build (bench/core_ncu.py --candidates, B32 T2048 H16, kept states, accumulate; two rounds, opposite
# orders). Output 0 = shipped (4 warps, 2 stages); updates 5 / state-gradient updates 8 = shipped.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
c() {  # c NAME CANDIDATES...
  name=$1; shift
  timeout 240 python3 bench/core_ncu.py --accumulate --keep-states --candidates "$@" > $OUT/cand-$name.log 2>&1
  echo "== $name (exit $?)"; grep -E "^round|rror|illegal" $OUT/cand-$name.log | cut -c1-200
}
c output output=0,12,13,14,15,16
c updates state_updates=5,11,12,13,14 state_grad_updates=8,11,12,13,14
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
