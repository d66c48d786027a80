"""Target normalisation and the masked multi-task loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F


@dataclass
class Normalizer:
    """Per-property standardisation, y_norm = (y - mean) / std, stored with the model."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, targets: np.ndarray, mask: np.ndarray) -> Normalizer:
        """Mean and std of the labels selected by ``mask`` (n, p); 0/1 where a column has none."""
        means, stds = [], []
        for j in range(targets.shape[1]):
            values = targets[mask[:, j], j]
            mean = float(values.mean()) if len(values) else 0.0
            std = float(values.std()) if len(values) > 1 else 1.0
            means.append(mean)
            stds.append(std if std > 1e-8 else 1.0)
        return cls(mean=means, std=stds)

    def normalize(self, y: np.ndarray) -> np.ndarray:
        return (y - np.asarray(self.mean)) / np.asarray(self.std)

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        return y * np.asarray(self.std) + np.asarray(self.mean)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}


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
