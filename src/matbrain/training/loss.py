"""The masked multi-task loss (target normalisation: :mod:`matbrain.models.normalizer`)."""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional as F


def masked_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor,
    kind: Literal["mse", "l1", "huber"] = "mse",
) -> torch.Tensor:
    """Weighted mean of the element loss over the labels present in ``mask``.

    pred, target, mask : (batch, n_properties); missing labels may be NaN in ``target``
    weights : (n_properties,) property weights
    Returns 0 (with a gradient path) when the batch holds no label.
    """
    target = torch.where(mask, target, torch.zeros_like(target))  # NaN * 0 would still be NaN
    if kind == "mse":
        element = (pred - target) ** 2
    elif kind == "l1":
        element = (pred - target).abs()
    elif kind == "huber":
        element = F.huber_loss(pred, target, reduction="none", delta=1.0)
    else:
        raise ValueError(f"unknown loss {kind!r}; valid: mse, l1, huber")
    w = mask.to(pred.dtype) * weights.to(pred.dtype)
    return (element * w).sum() / w.sum().clamp(min=1e-12)
