#!/usr/bin/env bash
# Time to first token and decode tokens/s on a GPU, one prepared command (see bench/README.md, "GPU").
#   bench/gpu.sh [--config omg-llava-7b] [--provider cuda] [--tokens 64]
# Exports a random-weight bundle of the config once (tools/model export.bundle, no onnxruntime verification), then
# measures it with bench/gpu.ts. Needs python3 with torch and onnx, and onnxruntime-node installed with
# ONNXRUNTIME_NODE_INSTALL=cuda12 for the CUDA provider; without it the script says so and exits 3.
# Dry run on a CPU machine: bench/gpu.sh --config tiny-random --provider cpu
set -euo pipefail
cd "$(dirname "$0")/.."
config=omg-llava-7b provider=cuda tokens=64
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --provider) provider=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
# The system python first: that is where Debian installs torch and onnx.
python=${PYTHON:-$([ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)}
dir=bench/results/tmp/gpu-$config
if [ ! -f "$dir/manifest.json" ]; then
  echo "exporting a random-weight $config bundle to $dir (vocabulary rows from the scenes tokenizer)"
  (cd tools/model && "$python" -m export.bundle --config "$config" --out "../../$dir" --seed 0 --no-verify \
    --name "$config-random" --source "random weights, seed 0")
fi
out=bench/results/tmp/gpu-$config-$provider.json
[ "$provider" = cuda ] && out=bench/results/gpu-latest.json
npx tsx bench/gpu.ts --bundle "$dir" --provider "$provider" --tokens "$tokens" --out "$out"
echo "wrote $out"
