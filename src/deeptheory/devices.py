"""Which device a job computes on. torch is imported only where a GPU can be: a job whose
work is tables and figures (a data-set target) need not pay its import (1-1.5 s)."""

from __future__ import annotations

import shutil


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def job_device(name: str, gpus):
    """The device of a training job declaring ``gpus`` GPUs (its resource gpu): ``auto`` is
    CUDA only for a job that holds a GPU. A cluster job without one may still see the
    node's GPUs; the workflow asks for one only on the GPU path (device cuda)."""
    if name == "auto" and not gpus:
        import torch

        return torch.device("cpu")
    return resolve_device(name)


def visible_device(name: str):
    """The device of a job that asks for no GPU (a target): ``name``, or the CPU where no
    GPU is visible to it (a cluster job on the GPU path: only training jobs hold one)."""
    import torch

    if name != "cpu" and not torch.cuda.is_available():
        return torch.device("cpu")
    return resolve_device(name)


def nvidia_driver() -> bool:
    """Whether the NVIDIA driver's tool is on the PATH: without it no CUDA device can be
    visible, which is known without importing torch."""
    return shutil.which("nvidia-smi") is not None


def visible_device_name(name: str) -> str:
    """``str(visible_device(name))`` without importing torch on a machine with no NVIDIA
    driver (no ``nvidia-smi``), where CUDA cannot be visible."""
    if name == "cpu" or not nvidia_driver():
        return "cpu"
    return str(visible_device(name))
