# Ran: main 03e8744 + the two test fixes of session 35 (test_triton_launch's core_launches, test_custom_op_runs_the_kernels' kept states), uncommitted
# Session 35, call 2 (nvidia-h200): Nsight Compute on the chained forward, the qk gradients and dv (B8 T2048 H16, stall reasons per SASS line), then the GPU tests call 1 failed or did not reach
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ncu --version | tail -1
timeout 150 python3 bench/core_ncu.py --accumulate --keep-states --case 8x2048 > $OUT/warm.log 2>&1; echo "warm exit $?"
timeout 240 ncu --clock-control none --profile-from-start off -k regex:"chained_kernel|chunk_grads_kernel|chunk_dv_kernel" \
  --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats --section LaunchStats \
  --section SourceCounters --import-source yes -o /tmp/core \
  python3 bench/core_ncu.py --accumulate --keep-states --case 8x2048 > $OUT/ncu.log 2>&1; echo "ncu exit $?"; tail -3 $OUT/ncu.log
ncu -i /tmp/core.ncu-rep --page details --csv > $OUT/details.csv 2>&1; echo "details $?"
ncu -i /tmp/core.ncu-rep --page source --csv --print-source sass > $OUT/source-sass.csv 2>&1; echo "source $?"
ls -la /tmp/core.ncu-rep $OUT
grep -E '"(Duration|Registers Per Thread|Achieved Occupancy|Eligible Warps Per Scheduler|Issued Warp Per Scheduler|Compute \(SM\) Throughput|Memory Throughput|Warp Cycles Per Issued Instruction)"' $OUT/details.csv | cut -d, -f5,12- | head -60
TESTS_LIMIT=300 ab_tests .gpu/u1 .gpu/u2 .gpu/u3 .gpu/u4
grep -h "^FAILED\|^ERROR" $OUT/tests-*.log | head -30
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
