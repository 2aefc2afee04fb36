export SAVE_CACHE=0; bash bench/gpu_session.sh >/dev/null 2>&1
export PYTHONPATH=$PWD NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels WANDB_MODE=offline PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=9.0
(NEOX_METALA_FAST_AUTOTUNE=1 TRITON_CACHE_DIR=/tmp/ct timeout 120 python3 -m pytest -q -p no:cacheprovider tests/model/test_loss.py tests/layers/test_model_gpu.py 2>&1 | tail -4) | tee $OUT/tests.log
timeout 330 python3 bench/train.py --baseline .gpu/plain_transformer.py --seqs 2048 8192 --kinds baseline metala --iters 10 --out $OUT/train.json > $OUT/train.log 2>&1; grep "ratio" $OUT/train.log
timeout 90 python3 bench/step_profile.py --kinds metala --top 60 --out $OUT/profile.json > $OUT/profile.log 2>&1; grep -A8 "== metala" $OUT/profile.log
