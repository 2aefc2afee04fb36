# Ran: main a321b65 (base, .gpu/variants/base) against the working tree (new: the qk gradients' inter sums as their intra products' accumulators)
# Session 37, call 1 (nvidia-h200): core f+b and bench/layer.py's block, base vs new, and new with the backward in one batch slice (--stored-rows-mib 256), its timeline traced
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_core base $PWD/.gpu/variants/base
ab_core new $PWD
ab_layer base $PWD/.gpu/variants/base 2048 8192
ab_layer new $PWD 2048 8192
ab_layer new-rows256 $PWD 2048 8192 --stored-rows-mib 256 --trace $OUT/trace
for f in $OUT/trace/metala-T*.json; do echo "== gaps $f"; python3 bench/trace_gaps.py $f --top 8 --steps 5 2>&1 | head -16; gzip $f; done
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
