# Session 18, call 6 (nvidia-h200-x2, the last 274 s of device time): the block at T=2048 with the core's backward in
# slices of 128 MiB of stored rows (the default: 5 slices) and of 256 MiB (2 slices), each GPU both, in opposite orders.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
mkdir -p $OUT/a128 $OUT/a256 $OUT/b256 $OUT/b128
(export CUDA_VISIBLE_DEVICES=0 SAVE_CACHE=0
 OUT=$OUT/a128 LAYER_LIMIT=80 LAYER_ARGS="--kinds metala attention --seq 2048 --stored-rows-mib 128" bash bench/gpu_session.sh layer-main > $OUT/a1.txt 2>&1
 OUT=$OUT/a256 LAYER_LIMIT=80 LAYER_ARGS="--kinds metala attention --seq 2048 --stored-rows-mib 256" bash bench/gpu_session.sh layer-main > $OUT/a2.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=1 SAVE_CACHE=0
 OUT=$OUT/b256 LAYER_LIMIT=80 LAYER_ARGS="--kinds metala attention --seq 2048 --stored-rows-mib 256" bash bench/gpu_session.sh layer-main > $OUT/b1.txt 2>&1
 OUT=$OUT/b128 LAYER_LIMIT=80 LAYER_ARGS="--kinds metala attention --seq 2048 --stored-rows-mib 128" bash bench/gpu_session.sh layer-main > $OUT/b2.txt 2>&1) &
wait
for f in a128 a256 b256 b128; do echo "== $f"; grep -E "^  (metala|attention) |ratio|share|core f\+b" $OUT/$f/layer-main.log; done
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
