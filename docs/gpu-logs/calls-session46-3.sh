# Session 46, call 3 (nvidia-h200, carry [".gpu"]): call 2's one failure, test_kernels_half_precision_within_bounds
# [stored-decays-T100-K20-V24-moderate-bf16] (d gate logits 1.04e-2 against a bound of 1e-2), on HEAD (variants/main),
# this tree, and this tree without the scale folded into e^(G - r) (variants/noscale), with its neighbours.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
ids="tests/ops/test_metala_core_triton.py::test_kernels_half_precision_within_bounds[stored-decays-T100-K20-V24-moderate-bf16] tests/ops/test_metala_core_triton.py::test_kernels_half_precision_within_bounds[formed-decays-T100-K20-V24-moderate-bf16] tests/ops/test_metala_core_triton.py::test_kernels_half_precision_within_bounds[stored-decays-T130-K20-V24-graded-bf16]"
for v in main noscale new; do
  dir=$PWD/.gpu/variants/$v; [ $v = new ] && dir=$PWD
  (cd $dir && PYTHONPATH=$dir TRITON_CACHE_DIR=/tmp/tc-$v timeout 400 python3 -m pytest -q -s -p no:cacheprovider -o addopts="" $ids > $OUT/t-$v.log 2>&1; echo "== $v exit $?") &
done
wait
grep -H "TRITON-CORE\|passed\|failed" $OUT/t-*.log | cut -c1-260
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
