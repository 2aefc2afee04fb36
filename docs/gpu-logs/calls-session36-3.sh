# Ran: main 1dda0b0 + docs/gpu-logs/chaincross-session36.py
# Session 36, call 3 (nvidia-h200): the chained forward against the three launches across chain counts (chaincross-session36.py), then the whole model with NEOX_METALA_CHAINED_FORWARD=0 (call 2 ran it chained)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
timeout 200 python3 docs/gpu-logs/chaincross-session36.py > $OUT/cross.log 2>&1; echo "cross exit $?"; grep -v Warn $OUT/cross.log
mkdir -p $OUT/train; NEOX_METALA_CHAINED_FORWARD=0 OUT=$OUT/train SAVE_CACHE=0 TRAIN_LIMIT=300 TRAIN_ARGS="--seqs 2048 8192 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train > $OUT/train.log 2>&1; grep -E "^T=|train exit" $OUT/train.log | sort -u
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
