# session 13, call 2 (nvidia-h200-x2): GPU 1 the epilogue kernels' block sweep (bench/epilogue.py); GPU 0 the layer
# benchmark (issue 15, bench/layer.py --hidden 2048 --seq 2048 8192)
bash bench/gpu_session.sh > $OUT/install.log 2>&1; tail -2 $OUT/install.log
(export CUDA_VISIBLE_DEVICES=1 SAVE_CACHE=0 MASTER_PORT=29611; EPILOGUE_LIMIT=250 bash bench/gpu_session.sh epilogue > $OUT/gpu1.txt 2>&1) &
(export CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$PWD NEOX_METALA_KERNEL_CACHE=/tmp/cache/kernels TORCH_CUDA_ARCH_LIST=9.0
 timeout 300 python3 bench/layer.py --hidden 2048 --seq 2048 8192 --out $OUT/layer-main.json > $OUT/layer-main.log 2>&1
 echo "layer-main exit $?" > $OUT/gpu0.txt) &
wait
cat $OUT/gpu0.txt; grep -E "EPILOGUE|blocks|exit|bandwidth" $OUT/gpu1.txt $OUT/epilogue.log | tail -32
grep -vE "Warning|warn" $OUT/layer-main.log | tail -14
