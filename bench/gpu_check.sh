#!/usr/bin/env bash
# The GPU smoke test: at most 10 minutes on one GPU, stopping at the first failure. In this order:
#   1. a usable CUDA device: PyTorch's CUDA build, the driver, kernels for the GPU's architecture;
#   2. the LSTM under the autocast training uses: recurrence and carried state in fp32, softmax layer not;
#   3. a tiny image chain on the GPU (teacher; BAN, CWTM and DKPP students; deterministic), each
#      generation killed once epoch 2 is logged and resumed: the same bytes as uninterrupted runs;
#   4. the same for a 2-layer LSTM with dropout and a BAN+L student;
#   5. bench.train_speed (WRN-28-10; ResNet-20 compiled) and bench.lm_speed (the paper's LSTM and
#      CNN-LSTM; the LSTM compiled), briefly, without and with torch.compile.
# Usage: bench/gpu_check.sh. It writes the report ($REPORT, default bench/results/gpu_check.md) as it
# goes, so a timeout still leaves what was measured; the terminal gets one line per step. Exit status
# 0 when every step passed, 1 at the first failure.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results}"
REPORT="${REPORT:-$OUT/gpu_check.md}"
BUDGET=600  # seconds for the whole check; each step gets at most what is left
mkdir -p "$OUT"
STEPS=5
{ echo "# GPU smoke test, $(date -u '+%Y-%m-%d %H:%M UTC')"; echo
  echo '```'; nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv 2>&1 | head -n 5
  python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)" 2>&1; echo '```'
} > "$REPORT"

# step NUMBER TITLE SECONDS COMMAND...: run COMMAND with what is left of the budget (at most SECONDS),
# its output appended to the report; one line on the terminal; exit 1 when it fails or runs out of time.
step() {
    local number=$1 title=$2 limit=$3 started=$SECONDS status last
    shift 3
    local left=$((BUDGET - SECONDS))
    ((limit > left)) && limit=$left
    printf '\n## %s/%s %s\n\n```\n' "$number" "$STEPS" "$title" >> "$REPORT"
    if ((limit > 0)); then
        timeout "$limit" "$@" >> "$REPORT" 2>&1
        status=$?
    else
        status=124
    fi
    last=$(grep -v '^\s*$' "$REPORT" | tail -n 1)
    echo '```' >> "$REPORT"
    if ((status == 124)); then
        last="out of time after ${limit} s"
    fi
    if ((status != 0)); then
        last=${last#FAILED: }
        echo "FAILED: $last" >> "$REPORT"
        echo "gpu_check step $number/$STEPS ($title) FAILED: $last"
        exit 1
    fi
    echo "passed in $((SECONDS - started)) s" >> "$REPORT"
    echo "gpu_check step $number/$STEPS ($title) passed in $((SECONDS - started)) s: $last"
}

speed() {  # step 5: short runs, the most telling first; any failure fails the step
    python -m bench.train_speed --device cuda --models wrn28-10 --steps 20 --warmup 5 \
        --out "$OUT/train_speed_cuda.json" &&
    python -m bench.lm_speed --device cuda --repeats 1 --steps 10 --warmup 3 --out "$OUT/lm_speed_cuda.json" &&
    python -m bench.train_speed --device cuda --compile --ways ours/ce ours/ban --models resnet20 \
        --steps 20 --warmup 5 --out "$OUT/train_speed_cuda_compile.json" &&
    python -m bench.lm_speed --device cuda --compile --archs lstm --repeats 1 --steps 10 --warmup 5 \
        --out "$OUT/lm_speed_cuda_compile.json"
}

step 1 "a usable CUDA device" 60 python -m bench.gpu_check device
step 2 "LSTM dtypes under autocast" 60 python -m bench.gpu_check lstm
step 3 "image chain killed and resumed" 180 python -m bench.gpu_check resume image
step 4 "LSTM chain killed and resumed" 120 python -m bench.gpu_check resume lm
export -f speed
export OUT
step 5 "training speed, eager and compiled" 300 bash -c speed
echo "gpu_check: every step passed in $SECONDS s; report in $REPORT"
