# Ran: the working tree (main a20e9d3 + v5) + .gpu/clockprobe-session38.py
# Session 38, call 4 (nvidia-h200): the block's timed windows against the SM clock, power and clock-event reasons that nvidia-smi samples meanwhile
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=clocks.max.sm,clocks.sm,power.limit,power.draw --format=csv
timeout 240 python3 .gpu/clockprobe-session38.py > $OUT/clock.log 2>&1; echo "exit $?"; grep -v -i warn $OUT/clock.log | cut -c1-200
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
