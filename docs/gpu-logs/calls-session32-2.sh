# Ran: main 16b68a2 with QK_K_SPLIT = True. .gpu/rest-* = the ids of test-ids-session32.txt that call 1 did not reach, in 12 parts
# Session 32, call 2 (nvidia-h200): QK_K_SPLIT on in the tree (call 1 with the prune: no fault in 114 of the 210 test ids and 8 of 9 autotuned cases; all processes ran out of time compiling): the block against attention with the switch on, then the 96 test ids call 1 did not reach, and the autotuned split test again
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_layer main $PWD 2048 8192
(TRITON_CACHE_DIR=/tmp/cache-aut timeout 380 python3 -m pytest -q -p no:cacheprovider -o addopts="" -k autotuned_in_bf16 tests/ops/test_metala_core_triton.py > $OUT/autotuned.log 2>&1
 echo "== autotuned split (exit $?): $(grep -E 'passed|failed' $OUT/autotuned.log | tail -1)") &
for f in .gpu/rest-*; do
  (TRITON_CACHE_DIR=$NEOX_METALA_KERNEL_CACHE/triton timeout 380 python3 -m pytest -rf -q -p no:cacheprovider -o addopts="" $(cat $f) > $OUT/on-$(basename $f).log 2>&1
   echo "== switch on, $f (exit $?): $(grep -E 'passed|failed' $OUT/on-$(basename $f).log | tail -1)") &
done
wait
grep -h "^FAILED\|Error" $OUT/on-*.log $OUT/autotuned.log | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
