# Session 20, call 2 (nvidia-h200, the only kind lent): PRIORS_FIRST again in the block (HEAD's code, "pf"), as shipped
# and flipped in the order A B B A; then the core's GPU tests on the working tree (the switch removed).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
mkdir -p $OUT/g0 $OUT/g1
layer() {  # layer NAME GPU DIR SEQ ARGS...
  n=$1; g=$2; D=$3; s=$4; shift 4
  (cd $D && PYTHONPATH=$D timeout 130 python3 bench/layer.py --hidden 2048 --seq $s --kinds metala attention --out $OUT/g$g/layer-$n.json "$@" > $OUT/g$g/layer-$n.log 2>&1)
  echo "== GPU $g $n T$s $*"; grep -E "^  (metala|attention) |ratio|core f\+b" $OUT/g$g/layer-$n.log
  python3 -c "import json; r=json.load(open('$OUT/g$g/layer-$n.json'))['D2048-T$s']['breakdown']['top_kernels']; print([(k, round(ms, 3)) for k, c, ms in r if c == 'core'])"
}
PF=$PWD/.gpu/variants/pf
export CUDA_VISIBLE_DEVICES=0
(layer pf 0 $PF 2048; layer pf-flip 0 $PF 2048 --flip PRIORS_FIRST; layer pf-flip2 0 $PF 2048 --flip PRIORS_FIRST; layer pf2 0 $PF 2048
 timeout 150 python3 -m pytest -q -p no:cacheprovider tests/ops/test_metala_core_triton.py -k "half_precision or model_widths or slices" > $OUT/g0/core-tests.log 2>&1; tail -3 $OUT/g0/core-tests.log
) > $OUT/g0/run.txt 2>&1
cat $OUT/g0/run.txt
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
