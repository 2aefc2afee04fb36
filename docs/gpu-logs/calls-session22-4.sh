# Code: as call 3 (0ddb08e less its comment edits); the machine still warm from call 3 (its Triton cache on disk).
# Session 22, call 4 (nvidia-h200): the 8 GPU tests of the core's decay forms that calls 2-3's time limits cut (tree as call 3)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
for i in 00 01 02 03; do
  (timeout 200 python3 -m pytest -q -p no:cacheprovider -o addopts="" $(cat .gpu/ids-s$i) > $OUT/tests-$i.log 2>&1; echo "== tests $i (exit $?): $(grep -E "passed|failed" $OUT/tests-$i.log | tail -1)") &
done
wait
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
