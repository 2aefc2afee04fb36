# Session 19, call 4 (nvidia-h200-x2). GPU 0: bench/core_configs.py over the qk gradients, the state-gradient updates
# and dv with more register caps (B64 T2048 H8). GPU 1: the block bench with the working tree (168-register configs
# for the state-gradient updates and dv) and with STORED_DECAY_ROWS off; then the core's GPU tests.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
mkdir -p $OUT/g0 $OUT/g1
(export CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$PWD
 timeout 330 python3 bench/core_configs.py --kernels chunk_qk_grads state_grad_updates chunk_dv \
    --cases 64x2048 --out $OUT/g0/core-configs.json > $OUT/g0/core-configs.log 2>&1; echo "core-configs rc $?"
 grep -E "^check .*FAILED|^T |CORE CONFIGS" $OUT/g0/core-configs.log) > $OUT/g0/run.txt 2>&1 &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611
 for v in ship norows; do
   if [ $v = ship ]; then D=$PWD; else D=$PWD/.gpu/variants/$v; fi
   echo "== layer $v"; (cd $D && PYTHONPATH=$D timeout 150 python3 bench/layer.py --hidden 2048 --seq 2048 8192 \
     --kinds metala attention --out $OUT/g1/layer-$v.json > $OUT/g1/layer-$v.log 2>&1); grep -E "^  (metala|attention) |ratio|share|core f\+b" $OUT/g1/layer-$v.log
 done
 (export TRITON_CACHE_DIR=/tmp/cache-tests/triton NEOX_METALA_FAST_AUTOTUNE=1 PYTHONPATH=$PWD
  timeout 150 python3 -m pytest -q -s -p no:cacheprovider tests/ops/test_metala_core_triton.py \
     -k "half_precision or model_widths or slices" > $OUT/g1/tests.log 2>&1; echo "tests rc $?"; tail -3 $OUT/g1/tests.log)
) > $OUT/g1/run.txt 2>&1 &
wait
cat $OUT/g1/run.txt; cat $OUT/g0/run.txt
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
