# Session 20, call 4 (nvidia-h200): output and dv stepping through V inside each program (V_STEPS, loads pipelined)
# against one block of all V; one configuration per variant (A-G; qk gradients at BV 64, 3 stages in all), HEAD and
# the working tree's full lists ("full"): bench/core_ncu.py --timings --accumulate --keep-states (B32 T2048 H16),
# then the block at T=2048, HEAD and full.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
t() {  # t VARIANT
  D=$PWD/.gpu/variants/$1
  (cd $D && PYTHONPATH=$D timeout 90 python3 bench/core_ncu.py --timings --accumulate --keep-states > $OUT/ncu-$1.log 2>&1)
  echo "== $1: $(grep -E 'core f\+b median' $OUT/ncu-$1.log) | $(grep -E '^ +(chunk_grads|chunk_dv|output)_kernel' $OUT/ncu-$1.log | awk '{print $1, $(NF-1)}' | tr '\n' ' ')"
  grep -iE "error|illegal" $OUT/ncu-$1.log | tail -2
}
layer() {  # layer VARIANT
  D=$PWD/.gpu/variants/$1
  (cd $D && PYTHONPATH=$D timeout 120 python3 bench/layer.py --hidden 2048 --seq 2048 --kinds metala attention --out $OUT/layer-$1.json > $OUT/layer-$1.log 2>&1)
  echo "== layer $1"; grep -E "^  (metala|attention) |ratio|core f\+b" $OUT/layer-$1.log
  python3 -c "import json; r=json.load(open('$OUT/layer-$1.json'))['D2048-T2048']['breakdown']['top_kernels']; print([(k, round(ms, 3)) for k, c, ms in r if c == 'core'])"
}
for v in head A B C D E G full; do t $v; done
layer full; layer head
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
