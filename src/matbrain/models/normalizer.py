"""Target normalisation: per-property mean and standard deviation of the training labels.

It belongs to a trained model (saved in its artifact), so it lives with the models; the
training loop fits it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
