# Ran: main fa38f5d (.gpu/variants/main) and the working tree (main + the chained backward: the state-gradient updates, their reverse scan and dv as one launch, ops/metala_core_chained_grad_kernels.py)
# Session 42, call 2 (nvidia-h200): the core f+b of main and of the tree (chained backward by its rule, and forced off) at the block's T 2048 and at 8 x 8192 (forced on and off); bench/layer.py's block for the tree; then the ids the chained backward changes most, twelve processes
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_core main $PWD/.gpu/variants/main
ab_core chained $PWD
(export NEOX_METALA_CHAINED_BACKWARD=0; ab_core launches $PWD)
ab_core main-8k $PWD/.gpu/variants/main --timings --case 8x8192
(export NEOX_METALA_CHAINED_BACKWARD=1; ab_core chained-8k $PWD --timings --case 8x8192)
echo "== cores done at $SECONDS s"
ab_layer chained $PWD 2048 8192
echo "== layer done at $SECONDS s"
TESTS_LIMIT=$((570 - SECONDS)) ab_tests .gpu/c0 .gpu/c1 .gpu/c2 .gpu/c3 .gpu/c4 .gpu/c5 .gpu/c6 .gpu/c7 .gpu/c8 .gpu/c9 .gpu/c10 .gpu/c11
grep -h -E "FAILED|Error" $OUT/tests-*.log | cut -c1-250 | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
