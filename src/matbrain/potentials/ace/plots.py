"""ACE plots: the learning curve of a pacemaker fit (energy and force RMSE per iteration, train and
validation) and the validation grid of a linear fit."""

from __future__ import annotations

from collections.abc import Mapping
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
    grid: list[dict[str, float]], chosen: Mapping[str, float], path: Path
) -> None:
    """Linear ACE's choice: validation errors (energy, forces, and stress when fitted) against
    the ridge strength, one line per energy weight (and stress weight), the chosen point circled."""
    panels = [("valid_energy_mae_meV_per_atom", "validation energy MAE (meV/atom)"),
              ("valid_forces_mae_eV_per_A", "validation force MAE (eV/Å)")]  # fmt: skip
    if "valid_stress_mae_GPa" in grid[0]:
        panels.append(("valid_stress_mae_GPa", "validation stress MAE (GPa)"))
    fig, axes = subplots(1, len(panels), figsize=(5 * len(panels), 4), dpi=120)

    def line_of(g: dict[str, float]) -> tuple[float, float | None]:
        return g["energy_weight"], g.get("stress_weight")

    def name(key: tuple[float, float | None]) -> str:
        return f"E weight {key[0]:g}" + ("" if key[1] is None else f", stress {key[1]:g}")

    def is_chosen(g: dict[str, float]) -> bool:
        return all(g.get(k) == v for k, v in chosen.items())

    for ax, (key, label) in zip(axes, panels, strict=True):
        for which in sorted({line_of(g) for g in grid}, key=lambda k: (k[0], k[1] or 0)):
            line = sorted((g["ridge_alpha"], g[key]) for g in grid if line_of(g) == which)
            ax.plot(*zip(*line, strict=True), "o-", ms=3, label=name(which))
        picked = [(g["ridge_alpha"], g[key]) for g in grid if is_chosen(g)]
        ax.plot(*zip(*picked, strict=True), "o", ms=10, mfc="none", color="black",
                label="chosen")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ridge strength")
        ax.set_ylabel(label)
        ax.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
