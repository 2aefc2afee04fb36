# Ran: main c613c82 with the untimed forms removed (kernels as 4a399d3's: QK_K_SPLIT on)
# Session 33, call 6 (nvidia-h200): the shipped core (accumulating, kept states, the block's shape B32 T2048 H16) under Nsight Compute: every launch of one step (details page), and the qk gradients' #21 build's SASS with its warp stalls (source page), for where its 1.21 ms go (session 19 did this for the unsplit 8-warp build)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export PYTHONPATH=$PWD
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1); echo "ncu: $NCU"
S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats --section InstructionStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis"
timeout 220 $NCU --clock-control none --profile-from-start off --launch-count 14 $S --csv --page details \
    python3 bench/core_ncu.py --accumulate --keep-states > $OUT/ncu-details.csv 2> $OUT/ncu-details.err; echo "ncu rc $?"; wc -l $OUT/ncu-details.csv; tail -3 $OUT/ncu-details.err
grep -E '"(Duration|Registers Per Thread|Achieved Occupancy|Theoretical Occupancy|Memory Throughput|DRAM Throughput|Compute \(SM\) Throughput|Issue Slots Busy|No Eligible|Executed Instructions|Block Limit Registers|Block Limit Shared Mem)"' $OUT/ncu-details.csv | grep chunk_grads | cut -d, -f5,13-16 | head -30
timeout 150 $NCU --clock-control none --profile-from-start off -k regex:chunk_grads --launch-count 1 \
    --section SourceCounters --section WarpStateStats --page source --csv --print-source sass \
    python3 bench/core_ncu.py --accumulate --keep-states > $OUT/ncu-qk-source.csv 2> $OUT/ncu-qk-source.err; echo "ncu source rc $?"; wc -l $OUT/ncu-qk-source.csv; tail -3 $OUT/ncu-qk-source.err
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
