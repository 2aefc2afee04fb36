# Session 19, call 1 (nvidia-h200): the core's kernels at the block's shape (B32 T2048 H16) under Nsight Compute,
# and their times by torch's profiler with the shipped settings, without the stored decay rows, with kept states.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONPATH=$PWD
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1); echo "ncu: $NCU"
timeout 150 python3 bench/core_ncu.py --timings > $OUT/t-shipped.txt 2>&1; tail -22 $OUT/t-shipped.txt
timeout 60 python3 bench/core_ncu.py --timings --flip STORED_DECAY_ROWS > $OUT/t-norows.txt 2>&1; tail -20 $OUT/t-norows.txt
timeout 60 python3 bench/core_ncu.py --timings --keep-states > $OUT/t-kept.txt 2>&1; tail -20 $OUT/t-kept.txt
S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats --section InstructionStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis"
timeout 200 $NCU --clock-control none --profile-from-start off --launch-count 10 $S --csv --page details \
    python3 bench/core_ncu.py > $OUT/ncu-details.csv 2> $OUT/ncu-details.err; echo "ncu rc $?"; wc -l $OUT/ncu-details.csv; tail -3 $OUT/ncu-details.err
grep -E '"(gpu__time_duration.sum|Duration|Registers Per Thread|Achieved Occupancy|Memory Throughput|DRAM Throughput|Compute \(SM\) Throughput|Issue Slots Busy|No Eligible|Executed Instructions)"' $OUT/ncu-details.csv | cut -d, -f5,13-16 | head -80
timeout 120 $NCU --clock-control none --profile-from-start off -k regex:chunk_grads --launch-count 1 \
    --section SourceCounters --section WarpStateStats --page source --csv --print-source sass \
    python3 bench/core_ncu.py > $OUT/ncu-qk-source.csv 2> $OUT/ncu-qk-source.err; echo "ncu source rc $?"; wc -l $OUT/ncu-qk-source.csv; tail -3 $OUT/ncu-qk-source.err
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
