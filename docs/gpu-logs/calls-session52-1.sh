# Planned for session 52's first GPU call (nvidia-h200, carry [".gpu"] after `bash bench/gpu_prepare.sh`). Session 51
# found the chained forward 10% faster once its carried states stay in the L2 (chains in groups). The same question
# for the backward's decay rows: decay_rows_kernel writes a slice's fp32 rows (128 MiB, STORED_ROWS_BYTES) and the qk
# kernel reads them at once, from DRAM; in slices of 32 MiB they may still be in the L2 when read. Slices that small
# leave the chained backward too few chains, so with them the state gradients run over the whole batch first
# (WHOLE_BATCH_STATE_GRADS=1: +134 MB held, which the smaller rows buffer pays back). Then the groups' sizes in the
# block rather than in the core alone (the block runs at the GPU's power-capped clocks).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
# the kinds' runs in turns (--interleave), so that the power cap's clock changes meet both blocks alike
ab_layer shipped $PWD 2048 8192 --interleave
[ $SECONDS -lt 380 ] && ab_layer rows32 $PWD 2048 --interleave --stored-rows-mib 32 --flip WHOLE_BATCH_STATE_GRADS=1
[ $SECONDS -lt 470 ] && ab_layer groups12 $PWD 2048 --interleave --flip CARRIED_BYTES=12582912 CARRIED_GRAD_BYTES=6291456
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
