# Session 24, call 2 (nvidia-h200): branch session24-conv-backward (d00c39f: the short conv's backward as one kernel) against main 182473c (3e5a3b5 + the one-op/two-ops test's norm-relative bound); epilogue blocks at the block's shape
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh; M=$PWD/.gpu/variants/main; C=$PWD/.gpu/variants/conv
(cd $C && PYTHONPATH=$C timeout 150 python3 bench/conv.py > $OUT/conv-sweep.log 2>&1; echo "== conv sweep exit $?"; grep -E "CONV|blocks|floor" $OUT/conv-sweep.log | cut -c1-220)
ab_layer main $M 2048; ab_layer conv $C 2048 8192; ab_layer main-again $M 2048
(cd $M && PYTHONPATH=$M timeout 150 python3 bench/epilogue.py --cases 32x2048x16x128 > $OUT/epilogue-sweep.log 2>&1; echo "== epilogue sweep exit $?"; grep -E "EPI|blocks|floor" $OUT/epilogue-sweep.log | cut -c1-220)
(cd $C && PYTHONPATH=$C timeout 180 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/ops/test_short_conv_triton.py tests/ops/test_triton_launch.py > $OUT/tests-conv.log 2>&1; echo "== tests conv exit $?: $(grep -E 'passed|failed' $OUT/tests-conv.log | tail -1)") &
(timeout 180 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/ops/test_mixer_triton.py -k two_ops > $OUT/tests-mixer.log 2>&1; echo "== tests mixer exit $?: $(grep -E 'passed|failed' $OUT/tests-mixer.log | tail -1)") &
wait
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
