# Session 20, call 5 (nvidia-h200): the working tree's final lists (qk gradients at BV 64 with 3 stages; dv stepping
# through V in two blocks of 64, 3 stages, 168 registers): each new configuration checked against fp64
# (bench/core_configs.py's checks: bf16 and fp16, T = 1, 40, 300, strong decay; plain and accumulating builds),
# then the block at T=2048 and 8192.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1 CUDA_LAUNCH_BLOCKING=1
for job in "chunk_qk_grads 13" "chunk_dv 15"; do
  for acc in "" --accumulate; do
    (timeout 200 python3 bench/core_configs.py --check $job $acc > "$OUT/check-${job// /-}$acc.log" 2>&1; echo "== check $job $acc: $(tail -1 "$OUT/check-${job// /-}$acc.log" | cut -c1-300)") &
  done
done
wait
unset CUDA_LAUNCH_BLOCKING
timeout 200 python3 bench/layer.py --hidden 2048 --seq 2048 8192 --kinds metala attention --out $OUT/layer.json > $OUT/layer.log 2>&1
grep -E "^  (metala|attention) |ratio|core f\+b|kernel time" $OUT/layer.log
python3 -c "
import json; d=json.load(open('$OUT/layer.json'))
for s in (2048, 8192):
    r=d.get(f'D2048-T{s}', {}).get('breakdown', {}).get('top_kernels', []); print(s, [(k, round(ms, 3)) for k, c, ms in r if c == 'core'])"
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
