# session 12, call 3: the new defaults timed at T=2048, then on GPU 1 their GPU tests and T=8192, on GPU 0 the
# README's main job (tiny, eval, checkpoint, resume) through deepy.py
SAVE_CACHE=0 TRAIN_LIMIT=160 TRAIN_ARGS="--seqs 2048 --kinds baseline metala --iters 10" bash bench/gpu_session.sh train
export PYTHONPATH=$PWD WANDB_MODE=offline PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=9.0
(export CUDA_VISIBLE_DEVICES=1
 (export TRITON_CACHE_DIR=/tmp/cache-tests/triton TORCHINDUCTOR_CACHE_DIR=/tmp/cache-tests/inductor NEOX_METALA_FAST_AUTOTUNE=1
  timeout 170 python3 -m pytest -q -p no:cacheprovider tests/training/test_batch_stream.py \
   tests/training/test_grad_accumulation_kernel.py tests/ops/test_triton_launch.py tests/ops/test_epilogue_triton.py \
   tests/layers/test_model_gpu.py > $OUT/new-tests.log 2>&1; echo "new-tests exit $?" >> $OUT/new-tests.log)
 NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels timeout 190 python3 bench/train.py --baseline .gpu/plain_transformer.py \
   --seqs 8192 --kinds baseline metala --iters 8 --out $OUT/train8192.json > $OUT/train8192.log 2>&1) &
(export CUDA_VISIBLE_DEVICES=0 NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels-q
 python3 -m neox_metala.data_prep sample > /dev/null 2>&1; echo '{"use_wandb": false}' > configs/nowb.yml
 t0=$(date +%s); timeout 170 python3 deepy.py train.py -d configs tiny.yml local_setup.yml nowb.yml quickstart_interrupt.yml > $OUT/q1.log 2>&1
 echo "q1 exit $? after $(( $(date +%s) - t0 )) s"; t0=$(date +%s)
 timeout 130 python3 deepy.py train.py -d configs tiny.yml local_setup.yml nowb.yml > $OUT/q2.log 2>&1
 echo "q2 exit $? after $(( $(date +%s) - t0 )) s") > $OUT/q.txt 2>&1 &
wait
cat $OUT/q.txt; grep -E "iteration (100|200)/|valid|loss" $OUT/q1.log $OUT/q2.log | tail -8
tail -15 $OUT/new-tests.log; grep -E "ratio|FAILED" $OUT/train8192.log
