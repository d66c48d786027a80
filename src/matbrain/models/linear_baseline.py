"""The linear part of a property head, started at its ridge least-squares fit on the training split.

What a materials scientist fits by hand before any network: a property as a linear function of
composition (atom fractions), plus the potential's energy per atom where a backbone gives one.
The ridge strength is chosen on the validation labels: the strongest one whose validation MAE is
within 2 % of the best, so that small label sets do not overfit rare elements.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

RIDGE_CHOICES = (1e-8, 1e-6, 1e-4, 1e-2, 1.0)
N_ELEMENTS = 119


def fit_ridge(
    design: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Weights and bias of ``y ~ design @ w + b`` on the ``train`` rows, and the ridge chosen.

    design : (n, k); y : (n,) with NaN where unlabelled; train, val : (n,) boolean masks.
    Columns that are zero on every training row keep weight 0.
    """
    x = np.concatenate([design, np.ones((len(design), 1))], axis=1)
    used = np.flatnonzero(np.abs(x[train]).sum(0) > 0)
    a = x[train][:, used]
    fits = []
    for ridge in RIDGE_CHOICES:
        w = np.linalg.solve(a.T @ a + ridge * len(a) * np.eye(len(used)), a.T @ y[train])
        score = float(np.abs(x[val][:, used] @ w - y[val]).mean()) if val.any() else 0.0
        fits.append((score, ridge, w))
    if not val.any():
        score, ridge, w = fits[0]  # nothing to choose on: the plain least-squares fit
    else:
        best = min(f[0] for f in fits)
        score, ridge, w = [f for f in fits if f[0] <= best * 1.02][-1]
    full = np.zeros(x.shape[1])
    full[used] = w
    return full[:-1], float(full[-1]), ridge


def set_linear(layer: nn.Linear, weights: np.ndarray, bias: float) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weights).to(layer.weight.dtype).unsqueeze(0))
        layer.bias.fill_(bias)


def composition_matrix(numbers: list[np.ndarray]) -> np.ndarray:
    """(n_structures, N_ELEMENTS) atom fractions."""
    out = np.zeros((len(numbers), N_ELEMENTS))
    for i, z in enumerate(numbers):
        out[i] = np.bincount(z, minlength=N_ELEMENTS) / len(z)
    return out


def batch_composition(
    numbers: torch.Tensor, graph_index: torch.Tensor, n_graphs: int
) -> torch.Tensor:
    """(n_graphs, N_ELEMENTS) atom fractions of a batch of graphs."""
    onehot = nn.functional.one_hot(numbers, N_ELEMENTS).to(torch.float32)
    total = torch.zeros((n_graphs, N_ELEMENTS), device=numbers.device).index_add_(
        0, graph_index, onehot
    )
    return total / total.sum(1, keepdim=True).clamp(min=1)
