#!/usr/bin/env bash
# One-shot GPU check: CUDA runs, AMP, --gpus N on NCCL, --sync-bn, P3/P4/P8 on CUDA, into one JSON
# (default gpu_check.json). Runs on CPU-only machines too: GPU items are recorded as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python bench/gpu_check.py "${1:-gpu_check.json}"
