#!/usr/bin/env bash
# The engine's GPU check, in one run of under 10 minutes on one GPU (H100-class):
#   1. bench.train_speed at full sizes (ResNet-20/56, WRN-28-10, DenseNet-BC-100-12, batch 128):
#      our engine (bf16, channels_last, fused SGD) against the ordinary DataLoader + fp32 loop;
#   2. the same for our engine with torch.compile, on the two models where it matters most
#      (DenseNet's compile alone takes minutes).
# Usage: bench/gpu_check.sh [extra bench.train_speed arguments]; results in bench/results/.
# DEVICE=cpu bench/gpu_check.sh --models resnet20 --steps 2 --warmup 1 checks the script itself.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"
status=0

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

timeout 330 python -m bench.train_speed --device "$DEVICE" --out "$OUT/train_speed_$DEVICE.json" "$@" \
    || { echo "eager benchmark failed or timed out"; status=1; }

for model in wrn28-10 resnet56; do  # one bounded run each: a slow compile costs only its own figures
    timeout 105 python -m bench.train_speed --device "$DEVICE" --compile --ways ours/ce ours/ban \
        --models "$model" --out "$OUT/train_speed_${DEVICE}_compile_$model.json" "$@" \
        || { echo "compiled benchmark of $model failed or timed out"; status=1; }
done

exit "$status"
