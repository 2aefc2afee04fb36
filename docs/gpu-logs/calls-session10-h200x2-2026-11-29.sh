# session 10, nvidia-h200-x2, call A: 1gpu + tp2 runs (exit, equivalence), tp2 saved at 10 resumed on 1 GPU
# (issue 17's GPU line), SIGTERM on 1 GPU
export OUT
NEOX_METALA_GPU_LAYOUTS="1gpu tp2" GPU_SUITE_K="not pp2" GPU_SUITE_LIMIT=530 bash bench/gpu_session.sh gpu-suite
nvidia-smi --query-gpu=index,memory.used --format=csv
# session 10, nvidia-h200-x2, call B: 1gpu + pp2 + dp2 runs (exit, equivalence), SIGTERM on PP=2
export OUT
NEOX_METALA_GPU_LAYOUTS="1gpu pp2 dp2" GPU_SUITE_K="not tp2_checkpoint and not 1gpu" GPU_SUITE_LIMIT=530 bash bench/gpu_session.sh gpu-suite
# session 10, nvidia-h200-x2, call C: after the head-gradient and meta-build fixes, the whole 2-GPU suite in one
# pytest (no -x: every test reports): 1gpu tp2 pp2 dp2 (exit, equivalence), tp2 saved at 10 resumed on 1 GPU,
# SIGTERM on 1 GPU and on PP=2
export OUT
SAVE_CACHE=0 bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
export PYTHONPATH=$PWD NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels WANDB_MODE=offline PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=9.0
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
[ -d /tmp/cache/kernels ] || { xz -dc .gpu/cache.txz | tar -xf - -C /tmp/cache; }
NEOX_METALA_GPU_LAYOUTS="1gpu tp2 pp2 dp2" NEOX_METALA_GPU_REPORT=$OUT/gpu-report.json timeout 530 \
  python3 -m pytest -q -s -m gpu -p no:cacheprovider tests/training/test_gpu_runs.py > $OUT/gpu-suite.log 2>&1
echo "suite exit $?"
grep -E "\| exit|passed|failed|Error|FAILED|vs 1gpu" $OUT/gpu-suite.log | tail -30
