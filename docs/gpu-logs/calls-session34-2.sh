# Ran: main 79b8389 + the chained forward (ops/metala_core_chained_kernels.py, metala_core_triton.CHAINED_FORWARD on), uncommitted
# Session 34, call 2 (nvidia-h200): a check of the chained forward against the three launches (.gpu/chaincheck.py: outputs, states, repeated launches; B32 T2048, B8 T8192, mixed and strong decays); the core's kernel times, chained against the three launches (--flip CHAINED_FORWARD) at B32 T2048 and B8 T8192; the block against attention at 2048 and 8192 with it
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels
timeout 240 python3 .gpu/chaincheck.py > $OUT/chaincheck.log 2>&1; echo "== chaincheck exit $?"; grep -v Warn $OUT/chaincheck.log | tail -12
grep -q "20 more" $OUT/chaincheck.log || { cd $OUT && tar -czf /tmp/all.tgz . && mv /tmp/all.tgz 0-all.tgz; exit 1; }
ab_core chained $PWD --timings
ab_core three $PWD --timings --flip CHAINED_FORWARD
ab_core chained8k $PWD --timings --case 8x8192
ab_core three8k $PWD --timings --case 8x8192 --flip CHAINED_FORWARD
ab_layer chained $PWD 2048 8192
ab_save_cache > /dev/null 2>&1
cd $OUT && tar -czf /tmp/all.tgz --exclude='cache.tgz.part-*' . && find . -mindepth 1 -maxdepth 1 ! -name 'cache.tgz.part-*' -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
