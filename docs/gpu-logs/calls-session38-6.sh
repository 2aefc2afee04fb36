# Ran: the working tree as call 5 (main a20e9d3 + v5 + the qk gradients' suffix sums as two tf32 products)
# Session 38, call 6 (nvidia-h200, warm, the session's last 129 s): bench/layer.py's block at T=2048 and 8192
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_layer scan $PWD 2048 8192
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
