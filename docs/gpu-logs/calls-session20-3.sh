# Session 20, call 3 (nvidia-h200): the qk-gradient kernel's V loop pipelined (num_stages 2, 3) or not, one
# configuration per variant of HEAD, timed in the block's build (bench/core_ncu.py --timings --accumulate
# --keep-states, B32 T2048 H16), two rounds in opposite orders.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
t() {  # t VARIANT ROUND
  D=$PWD/.gpu/variants/$1
  (cd $D && PYTHONPATH=$D timeout 100 python3 bench/core_ncu.py --timings --accumulate --keep-states > $OUT/ncu-$1-$2.log 2>&1)
  echo "== $1 round $2: $(grep -E 'core f\+b median' $OUT/ncu-$1-$2.log) | $(grep -E '^ +chunk_grads_kernel' $OUT/ncu-$1-$2.log | awk '{print $(NF-1), $NF}')"
}
for v in s1 s2 s3 b32s2 b32s3; do t $v 1; done
for v in b32s3 b32s2 s3 s2 s1; do t $v 2; done
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
