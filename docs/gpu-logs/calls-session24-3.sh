# Session 24, call 3 (nvidia-h200): main 045879c (the forward's states in one pass, branch session24-sequential-states; the conv's forward walking rows, both conv kernels at (4,256,2)x32 s3) against the same tree with SEQUENTIAL_STATES = False (= main 8f9f238's kernels)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh; A=$PWD/.gpu/variants/twolevel
ab_layer twolevel $A 2048 8192; ab_layer sequential $PWD 2048 8192; ab_layer twolevel-again $A 2048
ab_core model-twolevel $A --timings --case 8x2048 --heads 8; ab_core model-sequential $PWD --timings --case 8x2048 --heads 8
TESTS_LIMIT=170 ab_tests .gpu/ids-0*
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
