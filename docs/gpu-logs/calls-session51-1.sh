# Session 51, call 1 (nvidia-h200, carry [".gpu"]: session 50's kernel cache in .gpu/cache.txz). The backward's GEMMs
# that do not wait for the token mix (the output projection's weight gradient, the gate's share of the input
# projection's) on a second stream beside the mix's latency-bound kernels (bench/overlap.py), then the block with
# bench/core_floor.py's two "core f+b alone" lines.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export PYTHONPATH=$PWD NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
timeout 150 python3 bench/overlap.py > $OUT/overlap-2048.log 2>&1; echo "exit $?"; cat $OUT/overlap-2048.log | tail -20
timeout 90 python3 bench/overlap.py --batch 8 --seq 8192 > $OUT/overlap-8192.log 2>&1; echo "exit $?"; tail -12 $OUT/overlap-8192.log
echo "== timed by $SECONDS s"
source bench/gpu_ab.sh
[ $SECONDS -lt 300 ] && ab_layer default $PWD 2048 8192
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
