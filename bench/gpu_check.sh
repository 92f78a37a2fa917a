#!/usr/bin/env bash
# Everything that needs a GPU, in one command of at most ~8 minutes on one GPU (see bench/gpu_check.py):
# each model with bf16 + compile, stopped and resumed, sampled and evaluated; SIGKILL + resume; torchrun
# over all GPUs; a 12L/768 LM-shaped throughput and MFU. Writes bench/results/gpu_check_<gpu>.json.
#   bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA device here')"
exec timeout 600 python bench/gpu_check.py --device=cuda "$@"
