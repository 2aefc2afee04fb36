# Ran: main a20e9d3 (base, .gpu/variants/base), base + session 37's v6 diff (.gpu/variants/v6), and the working tree (base + session 37's v5 diff)
# Session 38, call 1 (nvidia-h200): core f+b of base, v5, v6; bench/layer.py's block for base one kind after the other and with --interleave, and the tree with --interleave
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
ab_core base $PWD/.gpu/variants/base
ab_core v5 $PWD
ab_core v6 $PWD/.gpu/variants/v6
ab_layer base $PWD/.gpu/variants/base 2048 8192
ab_layer base-interleave $PWD/.gpu/variants/base 2048 8192 --interleave
ab_layer v5-interleave $PWD 2048 8192 --interleave
ab_core base-again $PWD/.gpu/variants/base
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
