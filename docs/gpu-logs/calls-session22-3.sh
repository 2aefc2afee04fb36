# Code: branch session22-prefetch at 0ddb08e less its comment edits (tree) against 4f26650 (variant prev).
# Session 22, call 3 (nvidia-h200): branch session22-prefetch with dv's single-block builds loading first (tree)
# against 4f26650 (variant "prev"): dv / state-gradient-update / output candidates timed in one process, the
# autotuner's picks per launch, the block at T=2048 for both, fp64 checks of dv's single-block candidates, and the
# 12 GPU tests of the core's decay forms that call 2's time limit cut.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
P=$PWD/.gpu/variants/prev
timeout 170 python3 bench/core_ncu.py --accumulate --keep-states --candidates chunk_dv=15,7,9,14 state_grad_updates=8,6,10 output=0,1 > $OUT/candidates.log 2>&1
echo "== candidates (exit $?)"; grep -vE "Warning|warn" $OUT/candidates.log | tail -25 | cut -c1-200
timeout 60 python3 bench/core_ncu.py --timings --accumulate --keep-states > $OUT/core-ncu-tree.log 2>&1; echo "== core_ncu tree"; grep -E "median| us$" $OUT/core-ncu-tree.log | cut -c1-200
export CUDA_LAUNCH_BLOCKING=1
for job in "chunk_dv 7" "chunk_dv 9"; do
  for acc in "" --accumulate; do
    (timeout 150 python3 bench/core_configs.py --check $job $acc > "$OUT/check-${job// /-}$acc.log" 2>&1; echo "== check $job $acc: $(tail -1 "$OUT/check-${job// /-}$acc.log" | cut -c1-300)") &
  done
done
unset CUDA_LAUNCH_BLOCKING
for i in 00 01 02; do
  (timeout 170 python3 -m pytest -q -p no:cacheprovider -o addopts="" $(cat .gpu/ids-r$i) > $OUT/tests-$i.log 2>&1; echo "== tests $i (exit $?): $(grep -E "passed|failed" $OUT/tests-$i.log | tail -1)") &
done
wait
layer() {  # layer NAME DIR SEQ...
  name=$1; D=$2; shift 2
  (cd $D && PYTHONPATH=$D timeout 100 python3 bench/layer.py --hidden 2048 --seq "$@" --kinds metala attention --out $OUT/layer-$name.json > $OUT/layer-$name.log 2>&1)
  echo "== layer $name (exit $?)"; grep -E "^  (metala|attention) |ratio|core f\+b|kernel time" $OUT/layer-$name.log
  python3 -c "
import json; d=json.load(open('$OUT/layer-$name.json'))
for k, r in d.items():
    if isinstance(r, dict) and 'breakdown' in r: print(k, [(n, round(ms, 3)) for n, c, ms in r['breakdown']['top_kernels'] if c != 'gemm'])"
}
layer prev $P 2048
layer tree $PWD 2048
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
