# Ran: main 47a1c13 + the persistent qk gradients (QK_PERSISTENT off by default), its 8-warp split configurations removed after call 2's illegal addresses
# Session 43, call 3 (nvidia-h200): the persistent qk gradients' candidates in the core f+b (stored rows; then formed), the shipped core again on the same machine
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
CORE_LIMIT=150 ab_core persistent $PWD --flip QK_PERSISTENT --candidates qk_persistent=0,1,2 --rounds 1
echo "== at $SECONDS s"
CORE_LIMIT=$((290 - SECONDS)) ab_core persistent-formed $PWD --flip QK_PERSISTENT STORED_DECAY_ROWS --candidates qk_persistent=0,2 --rounds 1
echo "== at $SECONDS s"
[ $SECONDS -lt 240 ] && CORE_LIMIT=$((330 - SECONDS)) ab_core shipped $PWD
echo "== at $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
