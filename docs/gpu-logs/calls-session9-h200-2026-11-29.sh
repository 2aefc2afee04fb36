# session 9 call A: conv + core GPU tests on the merged conv-dw and qk-ksplit, then bench/conv.py (dpre candidates)
export OUT
CORE_TESTS="tests/ops/test_short_conv_triton.py tests/ops/test_short_conv_op.py tests/ops/test_metala_core_triton.py" \
  CORE_TESTS_LIMIT=330 CONV_LIMIT=150 SAVE_CACHE=0 bash bench/gpu_session.sh core-tests conv
# session 9 call B: bench/core_configs.py (each candidate checked in its own process, then timed)
export OUT
CORE_CONFIGS_LIMIT=480 SAVE_CACHE=0 bash bench/gpu_session.sh core-configs
# session 9 call C: core GPU tests (no 4-warp split-K configs), then core_configs again
export OUT
CORE_TESTS="tests/ops/test_metala_core_triton.py tests/ops/test_short_conv_op.py" CORE_TESTS_LIMIT=220 \
  CORE_CONFIGS_LIMIT=300 SAVE_CACHE=0 bash bench/gpu_session.sh core-tests core-configs
# session 9 call D: whole model (baseline vs MetaLA defaults, T 2048/8192), then the model/loss GPU tests
export SAVE_CACHE=0; bash bench/gpu_session.sh >/dev/null 2>&1
export PYTHONPATH=$PWD NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels WANDB_MODE=offline PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=9.0
timeout 340 python3 bench/train.py --baseline .gpu/plain_transformer.py --seqs 2048 8192 --kinds baseline metala --iters 10 --out $OUT/train.json > $OUT/train.log 2>&1; grep "ratio" $OUT/train.log
(NEOX_METALA_FAST_AUTOTUNE=1 TRITON_CACHE_DIR=/tmp/ct timeout 150 python3 -m pytest -q -p no:cacheprovider tests/model/test_loss.py tests/layers/test_model_gpu.py 2>&1 | tail -4) | tee $OUT/tests.log
