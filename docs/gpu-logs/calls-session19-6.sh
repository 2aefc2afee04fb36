# Session 19, call 6 (nvidia-h200-x2, the last ~6 min): 8-warp programs capped at 128 registers (two per SM: 16 warps)
# for the output kernel, dv and the state-gradient updates. GPU 0: bench/core_configs.py with just those candidates
# against the shipped ones (B64 T2048 H8). GPU 1: the block at T=2048, the working tree ("ship") against "occ" (its
# lists with those configs added, so the autotuner may pick them, also for the one-op mixer's accumulating dv).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
mkdir -p $OUT/g0 $OUT/g1
(export CUDA_VISIBLE_DEVICES=0; cd .gpu/variants/trim && PYTHONPATH=$PWD timeout 170 python3 bench/core_configs.py \
    --kernels output chunk_dv state_grad_updates --cases 64x2048 --out $OUT/g0/core-configs.json > $OUT/g0/core-configs.log 2>&1
 echo "core-configs rc $?"; grep -E "^check .*FAILED|^T |CORE CONFIGS" $OUT/g0/core-configs.log
 python3 -c "import json; t=json.load(open('$OUT/g0/core-configs.json'))['times']['64x2048']['per_candidate']; print(sorted((round(v,3),k) for k,v in t.items()))") > $OUT/g0/run.txt 2>&1 &
layer() {  # layer VARIANT
  if [ $1 = ship ]; then D=$PWD; else D=$PWD/.gpu/variants/$1; fi
  (cd $D && PYTHONPATH=$D timeout 85 python3 bench/layer.py --hidden 2048 --seq 2048 --kinds metala attention \
     --out $OUT/g1/layer-$1.json > $OUT/g1/layer-$1.log 2>&1)
  echo "== $1"; grep -E "^  (metala|attention) |ratio|core f\+b" $OUT/g1/layer-$1.log
  python3 -c "import json; r=json.load(open('$OUT/g1/layer-$1.json'))['D2048-T2048']['breakdown']['top_kernels']; print([(k, round(ms, 3)) for k, c, ms in r if c == 'core'])"
}
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611; layer occ; layer ship) > $OUT/g1/run.txt 2>&1 &
wait
cat $OUT/g0/run.txt $OUT/g1/run.txt
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
