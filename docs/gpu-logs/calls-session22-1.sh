# Code: branch session21-scores-forms at 5ce23cd (tree) against main at 54e4dc8 (variant main).
# Session 22, call 1 (nvidia-h200): branch session21-scores-forms (5ce23cd) against main (54e4dc8, variant "main").
# The core's per-launch kernel times (bench/core_ncu.py --timings) of both; the block at T=2048 for both (A/B) and
# 8192 for the branch; fp64 checks of the shipped picks (plain and accumulating); GPU tests of the core's decays.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
M=$PWD/.gpu/variants/main
ncu() {  # ncu NAME DIR
  (cd $2 && PYTHONPATH=$2 timeout 90 python3 bench/core_ncu.py --timings --accumulate --keep-states > $OUT/core-ncu-$1.log 2>&1)
  echo "== core_ncu $1 (exit $?)"; grep -E "median| us$" $OUT/core-ncu-$1.log | cut -c1-200
}
layer() {  # layer NAME DIR SEQ...
  name=$1; D=$2; shift 2
  (cd $D && PYTHONPATH=$D timeout 200 python3 bench/layer.py --hidden 2048 --seq "$@" --kinds metala attention --out $OUT/layer-$name.json > $OUT/layer-$name.log 2>&1)
  echo "== layer $name (exit $?)"; grep -E "^  (metala|attention) |ratio|core f\+b|kernel time" $OUT/layer-$name.log
  python3 -c "
import json; d=json.load(open('$OUT/layer-$name.json'))
for k, r in d.items():
    if isinstance(r, dict) and 'breakdown' in r: print(k, [(n, round(ms, 3)) for n, c, ms in r['breakdown']['top_kernels'] if c != 'gemm'])"
}
ncu branch $PWD
ncu main $M
layer main $M 2048
layer branch $PWD 2048 8192
export CUDA_LAUNCH_BLOCKING=1
for job in "chunk_qk_grads 13" "chunk_dv 15" "output 0"; do
  for acc in "" --accumulate; do
    (timeout 200 python3 bench/core_configs.py --check $job $acc > "$OUT/check-${job// /-}$acc.log" 2>&1; echo "== check $job $acc: $(tail -1 "$OUT/check-${job// /-}$acc.log" | cut -c1-300)") &
  done
done
wait
unset CUDA_LAUNCH_BLOCKING
timeout 150 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/ops/test_metala_core_triton.py -k "several_programs or strong or mixed or graded" > $OUT/tests.log 2>&1
echo "== tests (exit $?)"; grep -E "passed|failed|Error" $OUT/tests.log | tail -5
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
