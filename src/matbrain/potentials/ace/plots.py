"""ACE plots: the learning curve of a pacemaker fit (energy and force RMSE per iteration, train and
validation) and the validation grid of a linear fit."""

from __future__ import annotations

from pathlib import Path

from matbrain.common.plotting import subplots
from matbrain.potentials.ace.pacemaker_log import Point


def learning_curve_plot(
    points: list[Point], path: Path, kept_iteration: int | None = None, stopped: str | None = None
) -> None:

    fig, axes = subplots(1, 2, figsize=(10, 4), dpi=120)
    for ax, key, label in (
        (axes[0], "rmse_energy_meV_per_atom", "energy RMSE (meV/atom)"),
        (axes[1], "rmse_forces_eV_per_A", "force RMSE (eV/Å)"),
    ):
        for split, style in (("train", "-"), ("valid", "o-")):
            chosen = [(p.iteration, getattr(p, key)) for p in points if p.split == split]
            if chosen:
                ax.plot(*zip(*chosen, strict=True), style, ms=3, label=split)
        if kept_iteration is not None:
            ax.axvline(kept_iteration, color="grey", ls="--", lw=1, label="kept potential")
        ax.set_xlabel("pacemaker iteration")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.legend()
    if stopped:
        fig.suptitle(f"stopped early: {stopped}", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def validation_grid_plot(
    grid: list[dict[str, float]], chosen: tuple[float, float], path: Path
) -> None:
    """Linear ACE's choice: validation energy and force MAE against the ridge strength, one line
    per energy weight, the chosen pair circled."""
    fig, axes = subplots(1, 2, figsize=(10, 4), dpi=120)
    weights = sorted({g["energy_weight"] for g in grid})
    for ax, key, label in (
        (axes[0], "valid_energy_mae_meV_per_atom", "validation energy MAE (meV/atom)"),
        (axes[1], "valid_forces_mae_eV_per_A", "validation force MAE (eV/Å)"),
    ):
        for weight in weights:
            line = sorted((g["ridge_alpha"], g[key]) for g in grid if g["energy_weight"] == weight)
            ax.plot(*zip(*line, strict=True), "o-", ms=3, label=f"energy weight {weight:g}")
        picked = [g[key] for g in grid if (g["energy_weight"], g["ridge_alpha"]) == chosen]
        ax.plot([chosen[1]] * len(picked), picked, "o", ms=10, mfc="none", color="black",
                label="chosen")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ridge strength")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
