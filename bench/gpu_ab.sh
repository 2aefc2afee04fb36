#!/usr/bin/env bash
# The steps of a GPU call that compares trees on one machine, for a call script to source after bench/gpu_session.sh
# has installed the stack (OUT set, the repository root the working directory). A variant is a tree of its own:
# `git archive REV neox_metala bench | tar -x -C .gpu/variants/NAME` on this machine, carried with .gpu.
#   ab_core NAME DIR [ARGS...]   bench/core_ncu.py --accumulate --keep-states (default --timings) in DIR, CORE_LIMIT s
#   ab_layer NAME DIR SEQ... [--flip X]  bench/layer.py's block, metala against attention, its non-GEMM kernels
#   ab_checks JOB...             bench/core_configs.py --check JOB (e.g. "chunk_qk_grads 13"), plain and accumulating
#   ab_tests FILE...             pytest over the node ids in each FILE, one process per file, in parallel, their
#                                Triton builds in the kernel cache (a fresh machine compiles every configuration)
#   ab_save_cache                the kernel cache into $OUT/cache.tgz.part-* (copy them into .gpu/ for the next call)
# Every step writes its log under $OUT and prints its summary lines.
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1

ab_core() {
    local name=$1 dir=$2; shift 2
    (cd "$dir" && PYTHONPATH=$dir timeout ${CORE_LIMIT:-200} python3 bench/core_ncu.py --accumulate --keep-states "${@:---timings}" \
        > "$OUT/core-$name.log" 2>&1)
    echo "== core $name (exit $?)"; grep -E "median| us$|^round" "$OUT/core-$name.log" | cut -c1-200
}

ab_layer() {
    local name=$1 dir=$2; shift 2
    (cd "$dir" && PYTHONPATH=$dir timeout 300 python3 bench/layer.py --hidden 2048 --seq "$@" --kinds metala attention \
        --out "$OUT/layer-$name.json" > "$OUT/layer-$name.log" 2>&1)
    echo "== layer $name (exit $?)"; grep -E "^  (metala|attention) |ratio|core f\+b|kernel time" "$OUT/layer-$name.log"
    python3 -c "
import json, sys
for k, r in json.load(open(sys.argv[1])).items():
    if isinstance(r, dict) and 'breakdown' in r: print(k, [(n, round(ms, 3)) for n, c, ms in r['breakdown']['top_kernels'] if c != 'gemm'])" \
        "$OUT/layer-$name.json"
}

ab_checks() {
    local job acc log
    for job in "$@"; do
        for acc in "" --accumulate; do
            log="$OUT/check-${job// /-}$acc.log"
            (CUDA_LAUNCH_BLOCKING=1 timeout 200 python3 bench/core_configs.py --check $job $acc > "$log" 2>&1
             echo "== check $job $acc: $(tail -1 "$log" | cut -c1-300)") &
        done
    done
    wait
}

ab_tests() {
    local file log
    for file in "$@"; do
        log="$OUT/tests-$(basename "$file").log"
        (TRITON_CACHE_DIR=$NEOX_METALA_KERNEL_CACHE/triton timeout "${TESTS_LIMIT:-220}" python3 -m pytest -v -p no:cacheprovider -o addopts="" $(cat "$file") \
            > "$log" 2>&1
         local rc=$? summary
         summary=$(grep -E "[0-9]+ (passed|failed)" "$log" | tail -1)
         # -v names every id as it ends: a run cut by the limit still says which ran
         [ -n "$summary" ] || summary="cut: $(grep -c " PASSED" "$log") passed, $(grep -c " FAILED" "$log") failed so far"
         echo "== tests $file (exit $rc): $summary") &
    done
    wait
}

ab_save_cache() {  # also bench/gpu_session.sh's save_cache; here for what the steps after it compiled
    tar -czf /tmp/cache.tgz -C "$(dirname "$NEOX_METALA_KERNEL_CACHE")" "$(basename "$NEOX_METALA_KERNEL_CACHE")" &&
        split -b 15m /tmp/cache.tgz "$OUT/cache.tgz.part-" && ls -la "$OUT"/cache.tgz.part-*
}
