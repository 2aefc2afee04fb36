# Ran: main c613c82 with the untimed forms removed (the kernels as 4a399d3's: QK_K_SPLIT on, qk_split_prune)
# Session 33, call 3 (nvidia-h200): the shipped 4-warp channel split of the qk gradients (#21) checked for the upstream fault class (triton #10486/#10573/#11366): launched thousands of times at the block's and the model's shapes (.gpu/stress.py), then under compute-sanitizer (memcheck, racecheck, synccheck; no caching allocator) at small shapes, V 128 (the model's, which the prune offers it at) and V 32/64 (session 31's faulting shapes, as a positive control), #13 (8 warps, unsplit) as the control
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export PYTHONPATH=$PWD TRITON_CACHE_DIR=/tmp/tcache
CS=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1); echo "sanitizer: $CS"
timeout 200 python3 .gpu/stress.py 3000 > $OUT/stress.log 2>&1; echo "== stress exit $?"; grep -v "^\s*$" $OUT/stress.log | tail -8 | cut -c1-300
san() {  # tool V K T candidate [aug]
  local log=$OUT/san-$1-$2-$3-$4-$5${6:+-$6}.log
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 330 $CS --tool $1 --print-limit 8 python3 .gpu/sancheck.py $2 $3 $4 $5 $6 > $log 2>&1
  echo "== $1 V$2 K$3 T$4 #$5 $6 (exit $?): $(grep -E '^#|ERROR SUMMARY|RACECHECK SUMMARY' $log | tr '\n' ' ' | cut -c1-300)"
}
san memcheck 128 64 130 21 &
san memcheck 64 64 130 21 &
san memcheck 32 16 130 21 &
san memcheck 128 64 130 21 aug &
san memcheck 128 64 130 13 &
san racecheck 128 64 130 21 &
san racecheck 32 16 130 21 &
san racecheck 128 64 130 13 &
san synccheck 128 64 130 21 &
san synccheck 32 16 130 21 &
wait
grep -h -m3 -A4 "Invalid\|Race\|Hazard\|Barrier" $OUT/san-*.log | head -60 | cut -c1-250
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
