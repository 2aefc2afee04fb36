# Session 19, call 3 (nvidia-h200-x2). GPU 0: bench/core_configs.py (HEAD's kernels) over output, chunk_dv and
# state_grad_updates with register-capped candidates (168: three programs per SM), B64 T2048 H8 and B16 T8192 H8.
# GPU 1: core f+b at the block's shape for base (HEAD), sgudot (the working tree: the state-gradient updates' cumsum
# on the tensor cores) and sgucap (HEAD + a 168-register config for the state-gradient updates), twice, alternating;
# then the GPU tests of the working tree's changed kernel.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
mkdir -p $OUT/g0 $OUT/g1
(export CUDA_VISIBLE_DEVICES=0
 cd .gpu/variants/base && PYTHONPATH=$PWD timeout 420 python3 bench/core_configs.py --kernels output chunk_dv state_grad_updates \
    --cases 64x2048 16x8192 --out $OUT/g0/core-configs.json > $OUT/g0/core-configs.log 2>&1; echo "core-configs rc $?"
 grep -E "^check .*FAILED|^T |CORE CONFIGS" $OUT/g0/core-configs.log) > $OUT/g0/run.txt 2>&1 &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611
 for round in 1 2; do for v in base sgudot sgucap; do
   timeout 120 python3 .gpu/variants/$v/bench/core_ncu.py --timings > $OUT/g1/t-$v-$round.txt 2>&1
   echo "$v $round $(grep median $OUT/g1/t-$v-$round.txt) sgu $(grep state_grad_updates_kernel $OUT/g1/t-$v-$round.txt | awk '{print $(NF-1)}')"
 done; done
 (export TRITON_CACHE_DIR=/tmp/cache-tests/triton NEOX_METALA_FAST_AUTOTUNE=1 PYTHONPATH=$PWD
  timeout 200 python3 -m pytest -q -s -p no:cacheprovider tests/ops/test_cumsum_rows.py tests/ops/test_metala_core_triton.py \
     -k "cumsum or half_precision or model_widths or views" > $OUT/g1/tests.log 2>&1; echo "tests rc $?"; tail -3 $OUT/g1/tests.log)
) > $OUT/g1/run.txt 2>&1 &
wait
cat $OUT/g1/run.txt; cat $OUT/g0/run.txt
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
