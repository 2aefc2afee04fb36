# Code: an uncommitted predecessor of branch session21-scores-forms (a branch around each factorised chunk's work; 8 chunks per strong program).
# Session 21, call 5 (nvidia-h200): the scores' two forms as two launches (the factorised build a program per chunk,
# the sub-chunk build for the chunks of strong decay only). The block at T=2048 (HEAD, then this tree) and 8192;
# the core's kernel times (bench/core_ncu.py --timings, model's builds); fp64 checks of the shipped picks (bf16 and
# fp16, T = 1, 40, 300, strong decay; plain and accumulating); GPU tests of the core (strong, mixed, graded decays).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
layer() {  # layer NAME DIR SEQ...
  name=$1; D=$2; shift 2
  (cd $D && PYTHONPATH=$D timeout 200 python3 bench/layer.py --hidden 2048 --seq "$@" --kinds metala attention --out $OUT/layer-$name.json > $OUT/layer-$name.log 2>&1)
  echo "== layer $name (exit $?)"; grep -E "^  (metala|attention) |ratio|core f\+b|kernel time" $OUT/layer-$name.log
  python3 -c "
import json; d=json.load(open('$OUT/layer-$name.json'))
for k, r in d.items():
    if isinstance(r, dict) and 'breakdown' in r: print(k, [(n, round(ms, 3)) for n, c, ms in r['breakdown']['top_kernels'] if c != 'gemm'])"
}
layer head $PWD/.gpu/variants/head 2048
layer tree $PWD 2048 8192
timeout 60 python3 bench/core_ncu.py --timings --accumulate --keep-states > $OUT/core-ncu.log 2>&1; grep -E "median|_kernel" $OUT/core-ncu.log | cut -c1-160
export CUDA_LAUNCH_BLOCKING=1
for job in "chunk_qk_grads 13" "chunk_dv 15" "output 0"; do
  for acc in "" --accumulate; do
    (timeout 200 python3 bench/core_configs.py --check $job $acc > "$OUT/check-${job// /-}$acc.log" 2>&1; echo "== check $job $acc: $(tail -1 "$OUT/check-${job// /-}$acc.log" | cut -c1-300)") &
  done
done
wait
unset CUDA_LAUNCH_BLOCKING
timeout 150 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/ops/test_metala_core_triton.py -k "strong or mixed or graded or moderate" > $OUT/tests.log 2>&1
echo "== tests (exit $?)"; grep -E "passed|failed|Error" $OUT/tests.log | tail -5
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
