# Ran: main 16b68a2 (QK_K_SPLIT off in the tree; the wrapper turns it on). .gpu/ids-* = docs/gpu-logs/test-ids-session32.txt in 12 parts
# Session 32, call 1 (nvidia-h200): QK_K_SPLIT with metala_core_configs.qk_split_prune (the 4-warp split offered only where V > BV, written in session 31 after its device time): the autotuned split test (V 32/64/128 at the shapes that faulted), then every GPU test of the core, the one op and the epilogue with the switch on (session 31, without the prune: illegal addresses in six of twelve processes)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
(TRITON_CACHE_DIR=/tmp/cache-aut timeout 420 python3 -m pytest -q -p no:cacheprovider -o addopts="" -k autotuned_in_bf16 tests/ops/test_metala_core_triton.py > $OUT/autotuned.log 2>&1
 echo "== autotuned split (exit $?): $(grep -E 'passed|failed' $OUT/autotuned.log | tail -1)") &
for f in .gpu/ids-*; do
  (TRITON_CACHE_DIR=$NEOX_METALA_KERNEL_CACHE/triton timeout 420 python3 -c "
import sys, pytest
from neox_metala.ops import metala_core_triton
metala_core_triton.QK_K_SPLIT = True
sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-o', 'addopts=', *open(sys.argv[1]).read().split()]))" $f > $OUT/on-$(basename $f).log 2>&1
   echo "== switch on, $f (exit $?): $(grep -E 'passed|failed' $OUT/on-$(basename $f).log | tail -1)") &
done
wait
grep -h "^FAILED" $OUT/on-*.log | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
