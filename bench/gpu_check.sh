#!/usr/bin/env bash
# The GPU checks, in one short run: engine seconds per epoch at the paper's CIFAR size for every rule (with the
# engine's CUDA defaults), CONV6 with channels_last / bf16 / torch.compile, the epoch with and without a host read of
# the loss per step and under CUDA graphs, the host reads left per step, and the hinge and deformation ratios.
# Usage on a GPU machine: OUT=some/folder bash bench/gpu_check.sh
set -u
OUT=${OUT:-bench/results}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# the few-negatives hinge first: its window formulation has no GPU figure yet
timeout ${T_RATIO:-60} python3 bench/run.py --device cuda --only hinge_few_500,hinge_few_1000,deform --reps 5 --no-tiny --out "$OUT"
timeout ${T_TRAIN:-70} python3 bench/gpu_train_check.py --epochs 2 --batches 10 | tee "$OUT/gpu_train.md"
# 30 steps per variant: the layout's effect under bf16 needs more than 10 to settle
timeout ${T_CONV6:-120} python3 bench/gpu_conv6.py --steps 30 --out "$OUT/gpu_conv6.md"
# the GPU epoch: the loss read on the host every step against only at epoch ends, torch.compile and CUDA graphs;
# then what the host still reads per step (a GPU wait each), by call site
timeout ${T_SYNC:-150} python3 bench/gpu_epoch_sync.py --epochs 3 --batches 20 --out "$OUT/gpu_epoch_sync.md"
timeout ${T_SYNCS:-90} python3 bench/run.py --device cuda --only syncs --no-tiny --no-mem --out "$OUT"
timeout ${T_RATIO2:-45} python3 bench/run.py --device cuda --only hinge_all_500,hinge_all_1000 --reps 5 --no-tiny --out "$OUT"
exit 0
