# Ran: main 7dab94b (variant "main", .gpu/variants/main) against the tree: 7dab94b + the strong-decay test at the stores (`_store_bound`: each chunk's decays loaded first, their cross-thread minimum taken at the stores, in the qk, dv and output kernels)
# Session 33, call 7 (nvidia-h200): the core's kernel times of both (alternating, twice each), the block against attention with the change, fp64 checks of the output and dv kernels' shipped configurations (plain and accumulating), and the GPU tests of strong and mixed decays
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
M=$PWD/.gpu/variants/main
ab_core main $M --timings
ab_core bound $PWD --timings
ab_core main2 $M --timings
ab_core bound2 $PWD --timings
ab_layer bound $PWD 2048 8192
export CUDA_LAUNCH_BLOCKING=1
ab_checks "output 0" "chunk_dv 15" &
unset CUDA_LAUNCH_BLOCKING
TESTS_LIMIT=200 ab_tests .gpu/strong-a .gpu/strong-b
wait
grep -h "^FAILED\|Error" $OUT/tests-*.log | head -20
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
