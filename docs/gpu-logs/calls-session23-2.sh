# Session 23, call 2 (nvidia-h200): main f548db2, the core's plain builds against the accumulating ones (what the priors cost the qk gradients and dv)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
for round in 1 2; do
  for mode in plain accumulate; do
    flag=$([ $mode = accumulate ] && echo --accumulate)
    timeout 120 python3 bench/core_ncu.py --keep-states --timings $flag > $OUT/core-$mode-$round.log 2>&1
    echo "== $mode round $round"; grep -E "median|chunk_grads|chunk_dv|state_grad" $OUT/core-$mode-$round.log | cut -c1-120
  done
done
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
