# session 12, call 4: the README's main job (tiny, eval at 100, checkpoint, resume to 200) through deepy.py on a GPU
# with the new defaults (CUDA graphs, epilogue kernels, direct launches)
python3 -m pip install -q --no-index --no-deps .gpu/wheels/engines/*.whl 2>&1 | grep -v "^WARNING" | tail -2
python3 -m pip install -q --no-index --find-links .gpu/wheels/extras hjson pydantic 2>&1 | grep -v "^WARNING" | tail -2
export PYTHONPATH=$PWD WANDB_MODE=offline PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=9.0 NEOX_METALA_KERNEL_CACHE=/tmp/kq
python3 -m neox_metala.data_prep sample > /dev/null 2>&1
sed 's/"use_wandb": true/"use_wandb": false/' configs/local_setup.yml > configs/local_gpu.yml
t0=$(date +%s); timeout 130 python3 deepy.py train.py -d configs tiny.yml local_gpu.yml quickstart_interrupt.yml > $OUT/q1.log 2>&1
echo "q1 exit $? after $(( $(date +%s) - t0 )) s"; t0=$(date +%s)
timeout 90 python3 deepy.py train.py -d configs tiny.yml local_gpu.yml > $OUT/q2.log 2>&1
echo "q2 exit $? after $(( $(date +%s) - t0 )) s"
grep -E "iteration +(10|100|110|200)/|valid|eval|saved|loaded|resum|rror|graph" $OUT/q1.log $OUT/q2.log | cut -c1-220 | tail -20
