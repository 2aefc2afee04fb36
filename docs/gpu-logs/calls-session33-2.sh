# Ran: main c613c82
# Session 33, call 2 (nvidia-h200): the core (bench/core_ncu.py accumulating, kept states, kernel times) as shipped and with DV_IN_QK (dv by the qk gradients' programs), twice each in alternating order
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_core main $PWD --timings
ab_core dvqk $PWD --timings --flip DV_IN_QK
ab_core dvqk2 $PWD --timings --flip DV_IN_QK
ab_core main2 $PWD --timings
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
