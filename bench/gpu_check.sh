#!/usr/bin/env bash
# The GPU checks, in one short run (bench/README.md): engine seconds per epoch at the paper's CIFAR size for every rule,
# CONV6 with channels_last / bf16 / torch.compile, and the hinge and deformation ratios on the GPU.
# Usage on a GPU machine: OUT=some/folder bash bench/gpu_check.sh
set -u
OUT=${OUT:-bench/results}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout ${T_TRAIN:-70} python3 bench/gpu_train_check.py --epochs 2 --batches 10 | tee "$OUT/gpu_train.md"
timeout ${T_CONV6:-80} python3 bench/gpu_conv6.py --steps 10 --out "$OUT/gpu_conv6.md"
timeout ${T_RATIO:-45} python3 bench/run.py --device cuda --only hinge,deform --reps 5 --no-tiny --out "$OUT"
exit 0
