# Session 26, call 6 (nvidia-h200): main 54ef229 + CORE_A on (uncommitted): the fused-dv fp16 xfail case, three fresh processes, with the autotuners' picks printed (TRITON_PRINT_AUTOTUNING=1); the session-25-style script (stored rows off) the same way
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
T="tests/ops/test_metala_core_triton.py::test_kernels_half_precision_within_bounds[fused-dv-T70-K64-mixed-fp16]"
for i in 1 2 3; do
  TRITON_PRINT_AUTOTUNING=1 timeout 60 python3 -m pytest -q -s -rxX -p no:cacheprovider -o addopts="" "$T" > $OUT/autotune-test-$i.log 2>&1
  echo "== test run $i exit $?: $(grep -E "xfailed|xpassed|passed|failed" $OUT/autotune-test-$i.log | tail -1)"; grep -i "best config" $OUT/autotune-test-$i.log | sed 's/finished after.*best config selected: / -> /' | cut -c1-200
done
TRITON_PRINT_AUTOTUNING=1 PYTHONPATH=$PWD timeout 60 python3 .gpu/fp16diag.py > $OUT/autotune-script.log 2>&1; echo "== script exit $?"; grep -iE "best config|FP16DIAG" $OUT/autotune-script.log | sed 's/finished after.*best config selected: / -> /' | head -14 | cut -c1-200
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
