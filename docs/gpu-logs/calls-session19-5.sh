# Session 19, call 5 (nvidia-h200-x2): the block at T=2048, HEAD ("base") against the working tree ("ship": 168-register
# configs for the state-gradient updates and dv) on the same machine, each GPU both, in opposite orders.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
mkdir -p $OUT/g0 $OUT/g1
layer() {  # layer VARIANT GPU
  if [ $1 = ship ]; then D=$PWD; else D=$PWD/.gpu/variants/$1; fi
  (cd $D && PYTHONPATH=$D timeout 110 python3 bench/layer.py --hidden 2048 --seq 2048 --kinds metala attention \
     --out $OUT/g$2/layer-$1.json > $OUT/g$2/layer-$1.log 2>&1)
  echo "== GPU $2 $1"; grep -E "^  (metala|attention) |ratio|core f\+b" $OUT/g$2/layer-$1.log
  python3 -c "import json; r=json.load(open('$OUT/g$2/layer-$1.json'))['D2048-T2048']['breakdown']['top_kernels']; print([(k, round(ms, 3)) for k, c, ms in r if c == 'core'])"
}
(export CUDA_VISIBLE_DEVICES=0; layer base 0; layer ship 0) > $OUT/g0/run.txt 2>&1 &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611; layer ship 1; layer base 1) > $OUT/g1/run.txt 2>&1 &
wait
cat $OUT/g0/run.txt $OUT/g1/run.txt
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
