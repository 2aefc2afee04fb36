# Session 27, call 4 (nvidia-h200): main cc4393a (.gpu/variants/main) against + the fold (the working tree): test_one_op_equals_the_two_ops[aug-all-in-core] as numbers (.gpu/twoops.py), each tree twice, caches apart
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
export PYTHONUNBUFFERED=1
for run in 1 2; do for tree in main fold; do
  dir=$PWD; [ $tree = main ] && dir=$PWD/.gpu/variants/main
  (cd $dir && NEOX_METALA_KERNEL_CACHE=/tmp/cache-$tree-$run PYTHONPATH=$dir timeout 100 python3 .gpu/twoops.py > $OUT/twoops-$tree-$run.log 2>&1; echo "== $tree run $run exit $?"); grep TWOOPS $OUT/twoops-$tree-$run.log | cut -c1-400
done; done
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
