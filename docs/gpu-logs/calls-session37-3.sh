# Ran: the working tree (v5: both inter sums as the intra products' accumulators) and .gpu/variants/v6 (v6: dq's inter term added after its product, as a321b65; only dk's as the accumulator)
# Session 37, call 3 (nvidia-h200, pytest only, no install): call 2's two failures with their messages, on v5 and on v6 (with more split ids)
IDS="tests/ops/test_metala_core_triton.py::test_qk_gradients_over_channel_blocks_equal_the_recurrence[T130-K20-V24-mild-split2] tests/ops/test_metala_core_triton.py::test_qk_gradients_over_channel_blocks_equal_the_recurrence[T100-K20-V24-moderate-split2]"
MORE="tests/ops/test_metala_core_triton.py::test_qk_gradients_over_channel_blocks_equal_the_recurrence[T70-K64-mixed-split2] tests/ops/test_metala_core_triton.py::test_qk_gradients_over_channel_blocks_equal_the_recurrence[T300-mixed-offered-64-2-4-3] tests/ops/test_metala_core_triton.py::test_qk_gradients_over_channel_blocks_equal_the_recurrence[T2048-mild-offered-64-2-4-3]"
export PYTHONUNBUFFERED=1
(timeout 140 python3 -m pytest -v --tb=short -p no:cacheprovider -o addopts="" $IDS > $OUT/v5.log 2>&1; echo "v5 exit $?" >> $OUT/v5.log) &
(cd .gpu/variants/v6 && PYTHONPATH=$PWD timeout 140 python3 -m pytest -v --tb=short -p no:cacheprovider -o addopts="" $IDS $MORE > $OUT/v6.log 2>&1; echo "v6 exit $?" >> $OUT/v6.log) &
wait
for f in v5 v6; do echo "== $f"; grep -E "PASSED|FAILED|Error|assert|exit|passed|failed" $OUT/$f.log | cut -c1-300 | head -30; done
