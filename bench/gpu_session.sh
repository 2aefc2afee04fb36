#!/usr/bin/env bash
# Run on a lent GPU machine (the device tool), from the repository root, with the engine wheels of
# ../shared/tools/device-wheels.sh in .gpu/wheels and, if a previous session brought them back, compile caches
# in .gpu/cache.tgz.part-*. Usage: bash bench/gpu_session.sh STEP... (tests, layer-quick, layer, train, two-gpu)
# Every step has its own time limit; logs and JSON results go to $OUT; the tuned-kernel caches come back as
# $OUT/cache.tgz.part-* (copy them into .gpu/ for the next session).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT" /tmp/cache
export TORCH_CUDA_ARCH_LIST=9.0 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 WANDB_MODE=offline PYTHONPATH=$PWD
export TRITON_CACHE_DIR=/tmp/cache/triton TORCHINDUCTOR_CACHE_DIR=/tmp/cache/inductor
ls .gpu/cache.tgz.part-* >/dev/null 2>&1 && cat .gpu/cache.tgz.part-* | tar -xzf - -C /tmp/cache
start=$(date +%s)
python3 -m pip install -q --no-index --no-deps .gpu/wheels/engines/*.whl 2>&1 | grep -v "^WARNING" | tail -2
# DeepSpeed's needs always; W&B and the data-prep extras only when carried (a benchmark-only carry leaves them out)
python3 -m pip install -q --no-index --find-links .gpu/wheels/extras hjson pydantic 2>&1 | grep -v "^WARNING" | tail -2
ls .gpu/wheels/extras/wandb-* >/dev/null 2>&1 && python3 -m pip install -q --no-index \
    --find-links .gpu/wheels/extras wandb sentencepiece zstandard orjson 2>&1 | grep -v "^WARNING" | tail -2
python3 -c "import torch, triton, deepspeed, megatron.core, fla; print('stack', torch.__version__, triton.__version__,
deepspeed.__version__, fla.__version__, torch.cuda.get_device_name())" 2>&1 | tail -1 | tee "$OUT/stack.txt"
echo "install took $(( $(date +%s) - start )) s"

save_cache() {  # tuned kernels only (not the one-config test builds), compressed, in parts under the 16 MB limit
    [ -d /tmp/cache/triton ] || return 0
    tar -czf /tmp/cache.tgz -C /tmp/cache . && split -b 15m /tmp/cache.tgz "$OUT/cache.tgz.part-"
    ls -la "$OUT"/cache.tgz.part-* 2>/dev/null
}
trap save_cache EXIT
step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "== $name exit $? after $(( $(date +%s) - t0 )) s"
    grep -E "GPU-ERR|passed|failed|error|ratio|==|tok/s|M tok|floor|share|gemm|MFU" "$OUT/$name.log" | tail -60
}
for s in "$@"; do
    case $s in
        tests) (export TRITON_CACHE_DIR=/tmp/cache-tests/triton TORCHINDUCTOR_CACHE_DIR=/tmp/cache-tests/inductor \
                       NEOX_METALA_FAST_AUTOTUNE=1
                step gpu-tests 540 python3 -m pytest -q -s -p no:cacheprovider tests/ops/test_ops_gpu.py \
                    tests/ops/test_fused_gpu.py tests/layers/test_model_gpu.py) ;;
        layer-quick) step layer-quick 200 python3 bench/layer.py --hidden 2048 --seq 2048 --out "$OUT/layer-quick.json" ;;
        layer-main) step layer-main 200 python3 bench/layer.py --hidden 2048 --seq 2048 8192 --out "$OUT/layer-main.json" ;;
        model-test) (export TRITON_CACHE_DIR=/tmp/cache-tests/triton TORCHINDUCTOR_CACHE_DIR=/tmp/cache-tests/inductor \
                            NEOX_METALA_FAST_AUTOTUNE=1
                     step model-test 180 python3 -m pytest -q -s -p no:cacheprovider tests/layers/test_model_gpu.py \
                         tests/ops/test_fused_gpu.py -k "bf16 or model") ;;
        layer) step layer 420 python3 bench/layer.py --out "$OUT/layer.json" ;;
        train) step train 240 python3 bench/train.py --out "$OUT/train.json" ;;
        fused-tests) (export TRITON_CACHE_DIR=/tmp/cache-tests/triton TORCHINDUCTOR_CACHE_DIR=/tmp/cache-tests/inductor \
                             NEOX_METALA_FAST_AUTOTUNE=1
                      step fused-tests 300 python3 -m pytest -q -s -p no:cacheprovider tests/ops/test_fused_gpu.py \
                          -k "bf16") ;;
        *) echo "unknown step $s" ;;
    esac
done
