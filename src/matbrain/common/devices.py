"""Device choice, one rule for every engine: ``auto`` is CUDA when present, else the CPU."""

from __future__ import annotations


def pick_device(name: str = "auto") -> str:
    """The device name (``cpu``, ``cuda``, ``cuda:1``, ...) that ``name`` resolves to; engines
    take the string, torch code wraps it in ``torch.device``."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
