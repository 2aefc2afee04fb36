# Code: the working tree of the time (the fused kernel, measured and dropped; not in the repository).
# Session 21, call 2 (nvidia-h200): the core's output kernel and the epilogue's forward as one kernel
# (mixer_op.FUSED_FORWARD): the mixer's GPU tests (fp32 and bf16 against fp64, the model shape against the two ops),
# then the block at T=2048 fused, unfused (--flip mixer_op.FUSED_FORWARD), fused again.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
timeout 240 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/ops/test_mixer_triton.py -x -k "reference or model_shape or two_ops" > $OUT/tests.log 2>&1
echo "== tests (exit $?)"; grep -E "passed|failed|Error|assert|GPU-ERR" $OUT/tests.log | tail -12
layer() {  # layer NAME [flips]
  name=$1; shift
  timeout 150 python3 bench/layer.py --hidden 2048 --seq 2048 --kinds metala attention --out $OUT/layer-$name.json "$@" > $OUT/layer-$name.log 2>&1
  echo "== layer $name (exit $?)"; grep -E "^  (metala|attention) |ratio|core f\+b|kernel time" $OUT/layer-$name.log
  python3 -c "import json; b=json.load(open('$OUT/layer-$name.json'))['D2048-T2048']['breakdown']; print(b['share'], [(k, round(ms, 3)) for k, c, ms in b['top_kernels'] if c != 'gemm'])"
}
layer fused; layer unfused --flip mixer_op.FUSED_FORWARD; layer fused2
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
