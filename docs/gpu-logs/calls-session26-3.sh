# Session 26, call 3 (nvidia-h200): main 54ef229 + CORE_A on + bench/layer.py's kernel times (uncommitted): host-side gaps of the block's timed step (MetaLA vs attention, .gpu/host_trace.py); the default path against fp64 with CORE_A on (test_fused_gpu, bf16 self-aug)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
(PYTHONPATH=$PWD timeout 150 python3 .gpu/host_trace.py $OUT > $OUT/host-trace.log 2>&1; echo "== host trace exit $?"; grep HOST $OUT/host-trace.log)
gzip $OUT/host-*.json
(timeout 220 python3 -m pytest -s -p no:cacheprovider -o addopts="" tests/ops/test_fused_gpu.py -k "test_paths_equal_reference and bf16 and self-aug and not no-self-aug" > $OUT/fused-gpu.log 2>&1; echo "== fused-gpu exit $?"; grep -E "GPU-ERR default-.*grad-projected|GPU-ERR default-.*aug_balance|GPU-ERR default-.*same-o|GPU-ERR floor-.*grad-projected|passed|failed" $OUT/fused-gpu.log | tail -20)
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
