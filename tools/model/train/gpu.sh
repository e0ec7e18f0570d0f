#!/usr/bin/env bash
# The nano recipe on one CUDA GPU in about ten minutes: the stages of the CPU recipe (models/omg-llava-nano/README.md),
# batched, with scenes rendered by 14 worker processes and the two long stages held to a time budget.
#   cd tools/model && bash train/gpu.sh runs/nano      (PYTHON: one with torch, scipy, pillow, sentencepiece)
set -euo pipefail
run=${1:-runs/nano}
python=${PYTHON:-python3}
gpu="--run $run --device cuda --workers 14"
"$python" -m train.stage1 $gpu --threads 2 --batch 48 --lr 1e-3 --minutes 3.5 --save-every 100
"$python" -m train.classes $gpu --threads 2 --batch 32 --steps 60
"$python" -m train.ownership $gpu --threads 2 --batch 48 --minutes 1.5
"$python" -m train.precompute $gpu --scenes 3000 --batch 64
"$python" -m train.stage2 $gpu --seg-decoder --threads 2 --batch 48 --minutes 2.2 --save-every 200
"$python" -m train.assemble --run "$run" --out "$run/omg-llava-nano.pt"
