# Session 26, call 7 (nvidia-h200): main 54ef229 + CORE_A on (uncommitted): the fused-dv fp16 case through the test's check(), each qk-gradient configuration forced (.gpu/fp16check.py)
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
TRITON_PRINT_AUTOTUNING=1 PYTHONPATH=$PWD timeout 120 python3 .gpu/fp16check.py > $OUT/fp16check.log 2>&1; echo "== fp16check exit $?"; grep -E "FP16CHECK|Error" $OUT/fp16check.log | cut -c1-220
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
