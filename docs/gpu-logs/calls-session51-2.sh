# Session 51, call 2 (nvidia-h200, carry [".gpu"]). bench/overlap.py again, now with its pipelined batch halves (half
# B's core beside half A's epilogue), at the block's two shapes; then session 50's Gluon chained-forward variants
# against the shipped launch (docs/gpu-logs/chained-gluon-session50.py).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export PYTHONPATH=$PWD NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
timeout 150 python3 bench/overlap.py > $OUT/overlap-2048.log 2>&1; echo "exit $?"; grep -v Warning $OUT/overlap-2048.log | tail -20
timeout 120 python3 bench/overlap.py --batch 8 --seq 8192 > $OUT/overlap-8192.log 2>&1; echo "exit $?"; tail -9 $OUT/overlap-8192.log
echo "== timed by $SECONDS s"
timeout 220 python3 docs/gpu-logs/chained-gluon-session50.py > $OUT/chained-gluon.log 2>&1; echo "exit $?"
grep -E "round|failed|us|µs" $OUT/chained-gluon.log | tail -30
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
