# Session 27, call 3 (nvidia-h200): main cc4393a + the fold (e^G, e^(G_last-G) from the factorised form's factors; uncommitted): the fold's GPU tests call 2 did not reach; the default path against fp64 (test_fused_gpu, bf16 self-aug T63); the whole model at T=2048
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
(timeout 240 python3 -m pytest -s -p no:cacheprovider -o addopts="" tests/ops/test_fused_gpu.py -k "test_paths_equal_reference and bf16 and self-aug and not no-self-aug and T63" > $OUT/fused-gpu.log 2>&1; echo "== fused-gpu exit $?"; grep -E "GPU-ERR default-.*|passed|failed" $OUT/fused-gpu.log | tail -12) &
TESTS_LIMIT=240 ab_tests .gpu/ids-rest*
wait
mkdir -p $OUT/train; OUT=$OUT/train SAVE_CACHE=0 TRAIN_LIMIT=230 TRAIN_ARGS="--seqs 2048 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train 2>&1 | grep -v "^$" | grep -v "^iteration" | tail -4
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
