"""The learning curve of a pacemaker fit: energy and force RMSE per iteration, train and validation."""

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
