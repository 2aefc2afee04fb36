# Code: an uncommitted predecessor of branch session21-scores-forms (loads and stores masked for strong chunks; 8 chunks per strong program).
# Session 21, call 6 (nvidia-h200): the factorised launches without a branch around their work (a chunk of strong
# decay masked as if past the sequence), after call 5's branch slowed the pipelined V loops. The core's kernel
# times with each launch's (bench/core_ncu.py --timings), the block at T=2048 and 8192, fp64 checks of the shipped
# picks (plain and accumulating builds).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
timeout 60 python3 bench/core_ncu.py --timings --accumulate --keep-states > $OUT/core-ncu.log 2>&1; grep -E "median| us$" $OUT/core-ncu.log | cut -c1-200
timeout 200 python3 bench/layer.py --hidden 2048 --seq 2048 8192 --kinds metala attention --out $OUT/layer.json > $OUT/layer.log 2>&1
echo "== layer (exit $?)"; grep -E "^  (metala|attention) |ratio|core f\+b|kernel time" $OUT/layer.log
python3 -c "
import json; d=json.load(open('$OUT/layer.json'))
for k, r in d.items():
    if isinstance(r, dict) and 'breakdown' in r: print(k, [(n, round(ms, 3)) for n, c, ms in r['breakdown']['top_kernels'] if c != 'gemm'])"
export CUDA_LAUNCH_BLOCKING=1
for job in "chunk_qk_grads 13" "chunk_dv 15"; do
  for acc in "" --accumulate; do
    (timeout 150 python3 bench/core_configs.py --check $job $acc > "$OUT/check-${job// /-}$acc.log" 2>&1; echo "== check $job $acc: $(tail -1 "$OUT/check-${job// /-}$acc.log" | cut -c1-300)") &
  done
done
wait
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
