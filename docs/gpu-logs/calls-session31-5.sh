# Session 31, call 5 (nvidia-h200): the autotuned 4-warp split (QK_K_SPLIT on) at V 32, 64, 128: does it fault only where V < BV (64)?
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
for v in 32 48 64 128; do
  (timeout 150 python3 .gpu/vcheck.py $v > $OUT/v$v.log 2>&1; echo "== V$v (exit $?): $(grep -E ' ok$' $OUT/v$v.log | tr '\n' ';') $(grep -m1 -oE 'illegal memory access|AssertionError.*' $OUT/v$v.log | cut -c1-200)") &
done
wait
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
