# Session 19, call 2 (nvidia-h200-x2): the cumsums on the tensor cores (working tree = variant "ship"; "alldot" also in
# the forward kernels and dv; "base" = HEAD). GPU 0: GPU tests of the changed kernels, then ncu source pages of ship.
# GPU 1: core f+b at the block's shape for each variant (twice, alternating), then the block bench for ship and base.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
mkdir -p $OUT/g0 $OUT/g1
(export CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$PWD
 (export TRITON_CACHE_DIR=/tmp/cache-tests/triton NEOX_METALA_FAST_AUTOTUNE=1
  timeout 230 python3 -m pytest -q -s -p no:cacheprovider tests/ops/test_cumsum_rows.py tests/ops/test_metala_core_triton.py \
     -k "cumsum or half_precision or model_widths or slices or views" > $OUT/g0/tests.log 2>&1; echo "tests rc $?" >> $OUT/g0/tests.log)
 timeout 60 python3 -m pytest -q -s -p no:cacheprovider tests/ops/test_mixer_triton.py -k "bf16" > $OUT/g0/mixer.log 2>&1; echo "mixer rc $?" >> $OUT/g0/mixer.log
 timeout 200 $NCU --clock-control none --profile-from-start off -k regex:"output|chunk_dv|state_grad|state_updates|chunk_grads" \
    --launch-count 5 --section SourceCounters --section WarpStateStats --page source --csv --print-source sass \
    python3 bench/core_ncu.py > $OUT/g0/ncu-source.csv 2> $OUT/g0/ncu-source.err; echo "ncu rc $?"
 xz -6 $OUT/g0/ncu-source.csv) > $OUT/g0/run.txt 2>&1 &
(export CUDA_VISIBLE_DEVICES=1 MASTER_PORT=29611
 for round in 1 2; do for v in base ship alldot; do
   echo "== $v round $round"; timeout 120 python3 .gpu/variants/$v/bench/core_ncu.py --timings > $OUT/g1/t-$v-$round.txt 2>&1
   grep -E "median|_kernel " $OUT/g1/t-$v-$round.txt | awk '{print $1, $(NF-3), $NF}' | head -8
 done; done
 for v in ship base; do echo "== layer $v"; (cd .gpu/variants/$v && PYTHONPATH=$PWD timeout 150 python3 bench/layer.py --hidden 2048 --seq 2048 8192 \
     --kinds metala attention --out $OUT/g1/layer-$v.json > $OUT/g1/layer-$v.log 2>&1); grep -E "^  (metala|attention) |ratio|share|core f\+b" $OUT/g1/layer-$v.log; done
) > $OUT/g1/run.txt 2>&1 &
wait
cat $OUT/g1/run.txt; cat $OUT/g0/run.txt; tail -5 $OUT/g0/tests.log; tail -3 $OUT/g0/mixer.log
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
