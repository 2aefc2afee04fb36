# Code: main at 707f029; the "fo" variant = its kernels with `if True:` for the two factorised-range tests.
# Session 21, call 4 (nvidia-h200): what the sub-chunk (strong decay) form costs the kernels that carry it: HEAD's
# kernels against a variant whose scores and intra-chunk gradients take the factorised form only ("fo": exact for
# the benchmark's inputs, whose chunks are all within the factorised range; sm90 builds: output 255 -> 189 registers,
# dv 168 capped -> 165, qk gradients 192 B spilled -> 0), with register caps that the fewer registers allow.
# bench/core_ncu.py --candidates (B32 T2048 H16, kept states, accumulate; two rounds, opposite orders).
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -2 /tmp/install.log
export NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels PYTHONUNBUFFERED=1
c() {  # c VARIANT (. = the working tree)
  D=$PWD/${1/#fo/.gpu/variants/fo}
  (cd $D && PYTHONPATH=$D timeout 250 python3 bench/core_ncu.py --accumulate --keep-states --candidates output=0,7,12 chunk_dv=15,22,18 chunk_qk_grads=13 > $OUT/cand-${1/./head}.log 2>&1)
  echo "== $1 (exit $?)"; grep -E "^round|rror|illegal" $OUT/cand-${1/./head}.log | cut -c1-200
}
c .; c fo
tar -czf /tmp/all.tgz -C $OUT . && find $OUT -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz $OUT/0-all.tgz
