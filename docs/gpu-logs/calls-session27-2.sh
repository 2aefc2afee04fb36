# Session 27, call 2 (nvidia-h200): rows = main 81b509f + the decay rows' kernel as the only stored-rows form (uncommitted); fold = rows + e^G and e^(G_last-G) from the factorised form's factors (.gpu/variants/fold); A B A; STORED_DECAY_ROWS off; GPU tests of fold
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
F=$PWD/.gpu/variants/fold
ab_layer rows $PWD 2048; ab_layer fold $F 2048 8192; ab_layer rows-again $PWD 2048
ab_core rows $PWD --timings; ab_core fold $F --timings; ab_core stored-off $F --timings --flip STORED_DECAY_ROWS
cd $F; TESTS_LIMIT=230 ab_tests $OLDPWD/.gpu/ids-fold*; cd $OLDPWD
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
