# Session 48, call 3: the Gluon qk kernel in the tree (ops/metala_core_gluon.py): its GPU tests, the core with and
# without it (self-augmentation's terms, as the model), then the block at T 2048 and 8192.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
TESTS_LIMIT=170 ab_tests .gpu/t-gluon .gpu/t-model
echo "== timed by $SECONDS s"
CORE_LIMIT=90 ab_core gluon-2048 $PWD --case 32x2048 --augment --timings
CORE_LIMIT=90 ab_core triton-2048 $PWD --case 32x2048 --augment --timings --flip GLUON_QK_GRADS
echo "== timed by $SECONDS s"
[ $SECONDS -lt 300 ] && ab_layer gluon $PWD 2048 8192
echo "== timed by $SECONDS s"
[ $SECONDS -lt 440 ] && CORE_LIMIT=60 ab_core r168-2048 $PWD --case 32x2048 --augment --timings --flip GLUON_QK_REGISTERS=168
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
