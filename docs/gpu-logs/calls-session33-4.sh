# Ran: main c613c82 with the untimed forms removed (the kernels as 4a399d3's: QK_K_SPLIT on, qk_split_prune)
# Session 33, call 4 (nvidia-h200): call 3 found #21 (the 4-warp split) wrong but sanitizer-clean at one V step (V 32, 64: dq 0.75-0.82 relative), right at V 128: where does the one-V-step rule hold? #21 at V 96 (a masked second step), 192, 256, K 32/48/128, T 1/63/2048, fp32 at V 64; #29 (BV 32: V 64 in two steps, V 32 in one), #28 (2 stages); the shipped autotuner with its prune at the same shapes
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export PYTHONPATH=$PWD TRITON_CACHE_DIR=/tmp/tcache
vc() { local log=$OUT/vc-$1-$2-$3.log; shift 0; timeout 400 python3 .gpu/vcheck33.py "$@" > $log 2>&1; echo "== $1 $2 (exit $?)"; grep -E "^(ok|BAD)|Error|error" $log | cut -c1-260; }
vc 21 bfloat16 96:48:130 96:64:130 192:64:130 256:64:130 &
vc 21 bfloat16 128:32:130 128:128:130 128:64:1 128:64:63 &
vc 21 float32 64:64:130 32:16:130 128:64:130 96:48:130 &
vc 21 float16 64:64:130 128:64:130 128:64:2048 &
vc 29 bfloat16 64:64:130 32:16:130 128:64:130 96:48:130 &
vc 28 bfloat16 64:64:130 128:64:130 &
vc auto bfloat16 96:48:130 64:32:130 32:16:130 128:64:130 192:64:130 &
vc 19 bfloat16 64:64:130 32:16:130 &
wait
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
