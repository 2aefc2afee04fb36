# Session 20, call 1 (nvidia-h200-x2). GPU0: the core in chunks of 32 checked against fp64, then timed against 64
# (bench/core_ncu.py --timings, block shape), and the block's ACCUMULATE builds with PRIORS_FIRST flipped.
# GPU1: the block at T=2048 as shipped, with PRIORS_FIRST flipped, in chunks of 32.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
mkdir -p $OUT/g0 $OUT/g1
layer() {  # layer NAME GPU ARGS...
  n=$1; g=$2; shift 2
  timeout 150 python3 bench/layer.py --hidden 2048 --seq 2048 --kinds metala attention --out $OUT/g$g/layer-$n.json "$@" > $OUT/g$g/layer-$n.log 2>&1
  echo "== GPU $g $n $*"; grep -E "^  (metala|attention) |ratio|core f\+b" $OUT/g$g/layer-$n.log
  python3 -c "import json; r=json.load(open('$OUT/g$g/layer-$n.json'))['D2048-T2048']['breakdown']['top_kernels']; print([(k, round(ms, 3)) for k, c, ms in r if c == 'core'])"
}
ncu_t() {  # ncu_t NAME ARGS...
  n=$1; shift
  timeout 120 python3 bench/core_ncu.py --timings "$@" > $OUT/g0/ncu-$n.log 2>&1
  echo "== $n $*"; grep -E "core f\+b|_kernel" $OUT/g0/ncu-$n.log | head -12
}
(export CUDA_VISIBLE_DEVICES=0
 timeout 150 python3 .gpu/bt_check.py 32 > $OUT/g0/check32.log 2>&1; grep -E "FAIL|failures" $OUT/g0/check32.log | tail -5
 ncu_t c64; ncu_t c32 --chunk-size 32; ncu_t acc --accumulate; ncu_t acc-flip --accumulate --flip PRIORS_FIRST
 ncu_t c32-acc --chunk-size 32 --accumulate
) > $OUT/g0/run.txt 2>&1 &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611
 layer ship 1; layer flip 1 --flip PRIORS_FIRST; layer c32 1 --chunk-size 32
) > $OUT/g1/run.txt 2>&1 &
wait
cat $OUT/g0/run.txt $OUT/g1/run.txt
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
