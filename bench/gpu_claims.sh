#!/usr/bin/env bash
# Every claim's rows on CONV6 (the digits preset), three seeds, on one GPU: the claims grid with the paper's
# all-negatives hinge, then the few-negatives rows of the CONV6 column in 09 and the README. Finished rows are read
# back, so a second call after a time limit goes on where the first stopped.
# Usage on a GPU machine: OUT=some/folder bash bench/gpu_claims.sh
set -u
OUT=${OUT:-runs}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout ${T_CLAIMS:-420} python3 -m bioss_nb table --preset digits --grid claims --seeds 0 1 2 --out "$OUT/conv6-claims-all" --progress false
timeout ${T_GB5:-150} python3 -m bioss_nb table --preset digits --seeds 0 1 2 --out "$OUT/conv6-claims" --progress false \
    --rows hinge5gb-e2e-bp hinge5gb-e2e-rf hinge5gb-e2e-dtp hinge5gb-gll-bp hinge5gb-gll-urf hinge5gb-gll-rf \
           hinge5gb-rll-bp hinge5gb-rll-urf hinge5gb-rll-rf simclr-e2e-bp random
exit 0
