# Ran: main 79b8389 + the chained forward (uncommitted, as call 2)
# Session 34, call 3 (nvidia-h200): .gpu/chainprobe.py: the chained kernel's configurations one by one (full forward and states only) against the three launches, B32 T2048 and B8 T8192 H16
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
timeout 400 python3 .gpu/chainprobe.py > $OUT/chainprobe.log 2>&1; echo "== chainprobe exit $?"; grep -v Warn $OUT/chainprobe.log | tail -40
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
