# Session 47, call 2: the qk kernel's decay factors formed in the V loop's first step (variant A) or before the loop
# (B) against HEAD (176e89d), core f+b at B32 T2048 alternating; the short conv's blocks with 8 channels per thread.
OUT=/tmp/install SAVE_CACHE=0 bash bench/gpu_session.sh > /tmp/install.log 2>&1; tail -1 /tmp/install.log
source bench/gpu_ab.sh
CORE_LIMIT=170 ab_core head-2048 $PWD --case 32x2048 --timings
CORE_LIMIT=100 ab_core A-2048 $PWD/.gpu/variants/A --case 32x2048 --timings
CORE_LIMIT=100 ab_core B-2048 $PWD/.gpu/variants/B --case 32x2048 --timings
CORE_LIMIT=80 ab_core A2-2048 $PWD/.gpu/variants/A --case 32x2048 --timings
CORE_LIMIT=80 ab_core head2-2048 $PWD --case 32x2048 --timings
echo "== timed by $SECONDS s"
(timeout 150 python3 bench/conv.py --cases 32x2048x2048 > $OUT/conv.log 2>&1; echo "== conv (exit $?)"; cat $OUT/conv.log | cut -c1-200)
echo "== timed by $SECONDS s"
[ $SECONDS -lt 440 ] && CORE_LIMIT=80 ab_core A-8192 $PWD/.gpu/variants/A --case 8x8192 --timings
[ $SECONDS -lt 490 ] && CORE_LIMIT=80 ab_core head-8192 $PWD --case 8x8192 --timings
echo "== timed by $SECONDS s"
cd $OUT && tar -czf /tmp/all.tgz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + && mv /tmp/all.tgz 0-all.tgz
