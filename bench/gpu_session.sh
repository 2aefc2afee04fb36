#!/usr/bin/env bash
# Run on a lent GPU machine (the device tool), from the repository root, with the engine wheels of
# ../shared/tools/device-wheels.sh in .gpu/wheels (`bash bench/gpu_prepare.sh` here builds .gpu/; py-spy in
# .gpu/wheels/tools for stack dumps) and, if a previous
# call brought them back, compile caches in .gpu/cache.tgz.part-*. Usage: bash bench/gpu_session.sh STEP...
# (hang-old, starts, gpu-suite, tests, new-tests, core-tests, core, core-configs, core-ncu, conv, epilogue, loss, layer-quick, layer, train, profile, decode). Every step has its own time limit; logs and
# JSON results go to $OUT (and, at exit, all of them in $OUT/0-logs-PID.tgz); the kernel caches come back as
# $OUT/cache.tgz.part-* (copy them into .gpu/).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT" /tmp/cache
export TORCH_CUDA_ARCH_LIST=9.0 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 WANDB_MODE=offline PYTHONPATH=$PWD
# The project's own kernel cache (kernel_cache_dir / NEOX_METALA_KERNEL_CACHE): it persists while the machine
# stays warm between calls; `starts` empties it before each LAYOUT-cold step (bench/starts.py).
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels
[ -d /tmp/cache/kernels ] || { ls .gpu/cache.tgz.part-* >/dev/null 2>&1 && cat .gpu/cache.tgz.part-* | tar -xzf - -C /tmp/cache; }
# (.gpu/cache.txz: the same, recompressed with xz here to fit the carry limit next to the wheels)
[ -d /tmp/cache/kernels ] || { [ -f .gpu/cache.txz ] && xz -dc .gpu/cache.txz | tar -xf - -C /tmp/cache; }
start=$(date +%s)
python3 -m pip install -q --no-index --no-deps .gpu/wheels/engines/*.whl 2>&1 | grep -v "^WARNING" | tail -2
# DeepSpeed's needs always
python3 -m pip install -q --no-index --find-links .gpu/wheels/extras hjson pydantic 2>&1 | grep -v "^WARNING" | tail -2
for extra in zstandard sentencepiece orjson wandb; do  # the data-prep extras; W&B only when carried (it is large)
    ls .gpu/wheels/extras/$extra-* >/dev/null 2>&1 && python3 -m pip install -q --no-index \
        --find-links .gpu/wheels/extras $extra 2>&1 | grep -v "^WARNING" | tail -2
done
ls .gpu/wheels/tools/*.whl >/dev/null 2>&1 && python3 -m pip install -q --no-index --no-deps .gpu/wheels/tools/*.whl 2>&1 | grep -v "^WARNING" | tail -2
python3 -c "import torch, triton, deepspeed, megatron.core, fla; print('stack', torch.__version__, triton.__version__,
deepspeed.__version__, fla.__version__, torch.cuda.get_device_name())" 2>&1 | tail -1 | tee "$OUT/stack.txt"
echo "install took $(( $(date +%s) - start )) s"

source bench/gpu_ab.sh  # ab_save_cache
save_cache() {  # the kernel cache, compressed, in parts under the 16 MB limit (bench/gpu_ab.sh's ab_save_cache)
    [ -d /tmp/cache/kernels ] && [ "${SAVE_CACHE:-1}" = 1 ] || return 0
    ab_save_cache 2>/dev/null
}
# Every process this invocation starts inherits this tag, also those started in sessions of their own (which would
# outlive the call if a step's timeout cut them off): cleanup kills those and nothing else, so that a second
# invocation on another GPU of the machine keeps its runs (a machine-wide pkill of train.py did not: session 13's
# two-GPU calls lost their last training rows to the other GPU's cleanup).
export NEOX_METALA_GPU_SESSION=$$
cleanup() {
    local pid
    for pid in $(grep -lazx "NEOX_METALA_GPU_SESSION=$$" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do
        [ "$pid" != $$ ] && kill -9 "$pid" 2>/dev/null
    done
    save_cache
    # the device tool returns at most 8 files of $OUT: every log and result of this invocation in one archive, named
    # to sort first (the cache's parts and a second GPU's archive take most of the rest)
    tar -czf "$OUT/0-logs-$$.tgz" --exclude='cache.tgz.part-*' --exclude='0-logs-*' -C "$OUT" . 2>/dev/null
}
trap cleanup EXIT
step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "== $name exit $? after $(( $(date +%s) - t0 )) s"
    grep -E "GPU-ERR|passed|failed|error|Error|ratio|==|tok/s|M tok|floor|share|gemm|MFU|warmup|vs 1gpu|resumed|FAILED|best|CONFIGS|LOSS" "$OUT/$name.log" | tail -60
}
hang_old() {  # the code before the fix (.gpu/old: git archive of it), a pipeline-engine run with DataLoader workers
    [ -d .gpu/old ] || { echo "no .gpu/old"; return 0; }
    (cd .gpu/old && python3 -m neox_metala.data_prep sample > /dev/null 2>&1
     sed 's/"pipe_parallel_size": 0/"pipe_parallel_size": 1/; s/"train_iters": 200/"train_iters": 30/' configs/tiny.yml > configs/hang.yml
     export PYTHONPATH=$PWD
     timeout -s KILL 150 python3 deepy.py train.py -d configs hang.yml local_setup.yml > "$OUT/hang-old.log" 2>&1 &
     for _ in $(seq 120); do grep -q "iteration 30/30" "$OUT/hang-old.log" && break; sleep 1; done
     sleep 20
     echo "== hang-old: 20 s after iteration 30/30 these are still running:"
     for pid in $(pgrep -f "train.py|deepy.py|deepspeed.launcher"); do
         echo "--- pid $pid: $(tr '\0' ' ' < /proc/$pid/cmdline | cut -c1-150)"; py-spy dump --pid "$pid" 2>&1 | head -25
     done > "$OUT/hang-old-stacks.txt"
     grep -c "^--- pid" "$OUT/hang-old-stacks.txt"; grep -A6 "^Thread" "$OUT/hang-old-stacks.txt" | head -40
     pkill -9 -f "train.py|deepy.py|deepspeed.launcher"; wait) ;
}
for s in "$@"; do
    case $s in
        hang-old) hang_old ;;
        starts) step starts 560 python3 bench/starts.py --kernel-cache /tmp/cache/kernels \
                    --out "$OUT/starts.json" ${STARTS:+--steps $STARTS} ;;
        gpu-suite) NEOX_METALA_GPU_REPORT=$OUT/gpu-report.json step gpu-suite ${GPU_SUITE_LIMIT:-540} python3 -m pytest -q -s -m gpu \
                       -p no:cacheprovider ${GPU_SUITE_K:+-k "$GPU_SUITE_K"} tests/training/test_gpu_runs.py ;;
        tests) (export TRITON_CACHE_DIR=/tmp/cache-tests/triton TORCHINDUCTOR_CACHE_DIR=/tmp/cache-tests/inductor \
                       NEOX_METALA_FAST_AUTOTUNE=1
                step gpu-tests ${TESTS_LIMIT:-540} python3 -m pytest -q -s -p no:cacheprovider tests/ops/test_ops_gpu.py \
                    tests/ops/test_fused_gpu.py tests/layers/test_model_gpu.py) ;;
        layer-quick) step layer-quick 200 python3 bench/layer.py --hidden 2048 --seq 2048 --out "$OUT/layer-quick.json" ;;
        layer-main) step layer-main ${LAYER_LIMIT:-200} python3 bench/layer.py --hidden 2048 --seq 2048 8192 \
                        --out "$OUT/layer-main.json" ${LAYER_ARGS:-} ;;
        model-test) (export TRITON_CACHE_DIR=/tmp/cache-tests/triton TORCHINDUCTOR_CACHE_DIR=/tmp/cache-tests/inductor \
                            NEOX_METALA_FAST_AUTOTUNE=1
                     step model-test 180 python3 -m pytest -q -s -p no:cacheprovider tests/layers/test_model_gpu.py \
                         tests/ops/test_fused_gpu.py -k "bf16 or model") ;;
        layer) step layer 420 python3 bench/layer.py --out "$OUT/layer.json" ;;
        train) step train ${TRAIN_LIMIT:-400} python3 bench/train.py --baseline .gpu/plain_transformer.py \
                   --out "$OUT/train.json" ${TRAIN_ARGS:-} ;;
        profile) step profile ${PROFILE_LIMIT:-300} python3 bench/step_profile.py --out "$OUT/profile.json" ${PROFILE_ARGS:-} ;;
        fused-tests) (export TRITON_CACHE_DIR=/tmp/cache-tests/triton TORCHINDUCTOR_CACHE_DIR=/tmp/cache-tests/inductor \
                             NEOX_METALA_FAST_AUTOTUNE=1
                      step fused-tests 300 python3 -m pytest -q -s -p no:cacheprovider tests/ops/test_fused_gpu.py \
                          -k "bf16") ;;
        diag) step diag 200 python3 .gpu/diag.py ;;
        core) step core ${CORE_LIMIT:-240} python3 bench/core.py ${CORE_ARGS:-} ;;
        core-configs) step core-configs ${CORE_CONFIGS_LIMIT:-420} python3 bench/core_configs.py --out "$OUT/core-configs.json" \
                          ${CORE_CONFIGS_ARGS:-} ;;
        core-ncu) (NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)  # a CSV (details page) in the log;
                   # NCU_ARGS="-k regex:chunk_grads --launch-count 1 --section SourceCounters --page source --print-source sass"
                   # gives the SASS rows that bench/ncu_lines.py reads
                   step core-ncu ${CORE_NCU_LIMIT:-240} "$NCU" --clock-control none --profile-from-start off --csv \
                       ${NCU_ARGS:---launch-count 10 --page details --section SpeedOfLight --section Occupancy \
                       --section LaunchStats --section WarpStateStats --section SchedulerStats --section InstructionStats} \
                       python3 bench/core_ncu.py ${CORE_NCU_ARGS:-}) ;;
        conv) step conv ${CONV_LIMIT:-180} python3 bench/conv.py ${CONV_ARGS:-} ;;
        epilogue) step epilogue ${EPILOGUE_LIMIT:-240} python3 bench/epilogue.py ${EPILOGUE_ARGS:-} ;;
        loss) step loss ${LOSS_LIMIT:-180} python3 bench/loss.py ${LOSS_ARGS:-} ;;
        core-tests) (export TRITON_CACHE_DIR=/tmp/cache-tests/triton NEOX_METALA_FAST_AUTOTUNE=1
                     step core-tests ${CORE_TESTS_LIMIT:-420} python3 -m pytest -q -s -p no:cacheprovider \
                         ${CORE_TESTS_K:+-k "$CORE_TESTS_K"} \
                         ${CORE_TESTS:-tests/ops/test_metala_core_triton.py tests/ops/test_short_conv_triton.py \
                         tests/ops/test_epilogue_triton.py tests/training/test_grad_accumulation_kernel.py tests/layers/test_model_gpu.py}) ;;
        new-tests) (export TRITON_CACHE_DIR=/tmp/cache-tests/triton TORCHINDUCTOR_CACHE_DIR=/tmp/cache-tests/inductor \
                           NEOX_METALA_FAST_AUTOTUNE=1
                    step new-tests ${TESTS_LIMIT:-300} python3 -m pytest -q -s -p no:cacheprovider ${NEW_TESTS_K:+-k "$NEW_TESTS_K"} \
                        ${NEW_TESTS:-tests/training/test_batch_stream.py tests/training/test_grad_accumulation_kernel.py \
                        tests/ops/test_triton_launch.py tests/ops/test_epilogue_triton.py tests/layers/test_model_gpu.py}) ;;
        decode) ls .gpu/wheels/hf/*.whl >/dev/null 2>&1 && python3 -m pip install -q --no-index \
                    --find-links .gpu/wheels/hf transformers 2>&1 | grep -v "^WARNING" | tail -2
                (export NEOX_METALA_FAST_AUTOTUNE=1
                 step decode ${DECODE_LIMIT:-300} python3 bench/decode.py --out "$OUT/decode.jsonl" ${DECODE_ARGS:-}) ;;
        *) echo "unknown step $s" ;;
    esac
done
