#!/usr/bin/env bash
# The committed nano bundle fine-tuned on one CUDA GPU in about eight minutes: the whole segmenter on fresh scenes,
# half of them with two shapes of one colour (the shapes its queries merge, which caps counting and GCG naming),
# then the stage-2 cache and the LLM side again over the new object tokens.
#   cd tools/model && python3 -m train.from_bundle --run runs/ft   (where python3-onnx is: it reads the bundle)
#   bash train/gpu_finetune.sh runs/ft                             (on the GPU machine; PYTHON as for gpu.sh)
set -euo pipefail
run=${1:-runs/ft}
python=${PYTHON:-python3}
gpu="--run $run --device cuda --workers 14"
"$python" -m train.ownership $gpu --threads 2 --whole --twins 0.5 --batch 32 --lr 1.5e-4 --minutes 3.5
"$python" -m train.precompute $gpu --scenes 3000 --batch 64
"$python" -m train.stage2 $gpu --resume --seg-decoder --threads 2 --batch 48 --lr 3e-4 --minutes 2.2 --save-every 200
"$python" -m train.assemble --run "$run" --out "$run/omg-llava-nano.pt"
