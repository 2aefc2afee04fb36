# Planned for session 51's first GPU call (nvidia-h200, carry [".gpu"] after `bash bench/gpu_prepare.sh`): the Gluon
# chained forward's variants (docs/gpu-logs/chained-gluon-session50.py) against the shipped Triton launch, timed in one
# process, then the shipped kernel and the variants under Nsight Compute (stall reasons: the chained kernels are
# latency-bound, and session 50 could not tell on what: the Gluon build with 2 or 3 programs per SM took the same time).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export PYTHONPATH=$PWD
timeout 240 python3 docs/gpu-logs/chained-gluon-session50.py > $OUT/chained-gluon.log 2>&1; grep -E "round|failed" $OUT/chained-gluon.log
timeout 300 ncu --clock-control none --profile-from-start off --kernel-name regex:"chained" --section SpeedOfLight \
    --section Occupancy --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --csv \
    --page details python3 docs/gpu-logs/chained-gluon-session50.py --ncu > $OUT/chained-gluon-ncu.csv 2>&1
grep -E "chained|Stall|Issued|Eligible|Duration|Throughput" $OUT/chained-gluon-ncu.csv | cut -c1-200 | head -80
# the block with bench/core_floor.py's two "core f+b alone" lines (the op, and the core as the block calls it)
source bench/gpu_ab.sh
[ $SECONDS -lt 330 ] && ab_layer default $PWD 2048 8192
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
