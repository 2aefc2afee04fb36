# Session 25, call 4 (nvidia-h200): working tree = main 6c910f5 + CORE_AUG (uncommitted): the fused-dv fp16 defect as check() runs it (forward first, direct launches on / off); the default path against fp64 at T2048 bf16 with self-augmentation (test_fused_gpu)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export PYTHONPATH=$PWD
timeout 160 python3 -m pytest -s -p no:cacheprovider -o addopts="" "tests/ops/test_fused_gpu.py::test_paths_equal_reference[T2048-bf16-self-aug]" > $OUT/fused-gpu.log 2>&1; echo "== fused-gpu exit $?"; grep -E "GPU-ERR (default|floor)-.*(grad-projected|aug_balance|grad-q|decay_logits)|GPU-TIME|passed|failed" $OUT/fused-gpu.log | tail -12
for mode in fwd nofwd; do for d in 1 0; do NEOX_METALA_DIRECT_LAUNCH=$d timeout 35 python3 .gpu/fp16diag2.py $mode > $OUT/diag2-$mode-$d.log 2>&1; echo "== $mode direct $d exit $?"; grep -E "FP16DIAG2|PICKS|Error" $OUT/diag2-$mode-$d.log | cut -c1-300; done; done
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
