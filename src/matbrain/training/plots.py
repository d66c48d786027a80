"""Parity plots and learning curves as PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from matbrain.common.plotting import subplots


def parity_plot(
    true: np.ndarray, pred: np.ndarray, title: str, unit: str, path: Path, mae: float | None = None
) -> None:
    fig, ax = subplots(figsize=(4.5, 4.5), dpi=120)
    if len(true):
        lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=1, ls="--")
        ax.scatter(true, pred, s=12, alpha=0.7, edgecolor="none")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
    label = f" ({unit})" if unit else ""
    ax.set_xlabel(f"DFT{label}")
    ax.set_ylabel(f"predicted{label}")
    subtitle = (
        f"\nMAE {mae:.4g}{' ' + unit if unit else ''}, n={len(true)}" if mae is not None else ""
    )
    ax.set_title(f"{title}{subtitle}", fontsize=10)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path)


def learning_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Loss per epoch (train/val) and validation MAE/MAD per property."""
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 4), dpi=120)
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss (normalised targets)")
    ax1.set_yscale("log")
    ax1.legend()
    names = list(history[0].get("val_mae_over_std", {})) if history else []
    for name in names:
        ax2.plot(epochs, [h["val_mae_over_std"][name] for h in history], label=name)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation MAE / std")
    if names:
        ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
