"""Which number formats and kernels a CUDA device runs fast: AMP's dtype, TF32, cuDNN autotuning.

bf16 is chosen only where the GPU has bf16 tensor cores (compute capability 8.0, Ampere, and up).
`torch.cuda.is_bf16_supported()` also answers yes on older GPUs (V100, T4) where bf16 is emulated:
there convolutions autocast to bf16 run slowly or not at all in cuDNN, so those GPUs get fp16 with
a loss scaler.
"""
from __future__ import annotations

import torch

BF16_CAPABILITY = (8, 0)


def bf16_native(device: torch.device | int) -> bool:
    """Does this CUDA device run bf16 in hardware?"""
    return tuple(torch.cuda.get_device_capability(device)) >= BF16_CAPABILITY


def amp_dtype(device: torch.device) -> torch.dtype:
    """The autocast dtype for mixed precision on `device` (a CUDA device)."""
    return torch.bfloat16 if bf16_native(device) else torch.float16


def fast_kernels(device: torch.device) -> dict:
    """Turn on what makes convolutions and matmuls faster on a CUDA device, and say what was set:
    cuDNN autotuning (images have one size per run, so the search pays off from the 2nd step)
    and TF32 tensor cores for float32 matmuls and convolutions (Ampere and up; PyTorch's own
    recommendation for training). Nothing changes on the CPU."""
    if device.type != "cuda":
        return {}
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return {"cudnn_benchmark": True, "tf32": True}


def channels_last(device: torch.device, amp: bool) -> bool:
    """Keep convolution weights (and so activations) in NHWC: what tensor cores read without a
    transpose. Only with AMP on CUDA, where NVIDIA's and PyTorch's guides measure it faster for
    convnets; in float32, and on the CPU, it is not a reliable win."""
    return device.type == "cuda" and amp
