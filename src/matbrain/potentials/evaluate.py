"""Energy / force / stress errors of any ASE calculator on labelled structures, with parity plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.units import GPa

from matbrain.common.plotting import subplots
from matbrain.potentials.data import ENERGY_KEY, FORCES_KEY, ISOLATED_ATOM, STRESS_KEY


@dataclass
class Predictions:
    """Reference and predicted labels, flattened: energies per atom (eV/atom), force components
    (eV/Å), stress components (GPa)."""

    energy_ref: list[float] = field(default_factory=list)
    energy_pred: list[float] = field(default_factory=list)
    forces_ref: list[np.ndarray] = field(default_factory=list)
    forces_pred: list[np.ndarray] = field(default_factory=list)
    stress_ref: list[np.ndarray] = field(default_factory=list)
    stress_pred: list[np.ndarray] = field(default_factory=list)

    def arrays(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        ref, pred = getattr(self, f"{kind}_ref"), getattr(self, f"{kind}_pred")
        if not ref:
            return np.zeros(0), np.zeros(0)
        return np.concatenate([np.ravel(r) for r in ref]), np.concatenate(
            [np.ravel(p) for p in pred]
        )


def predict(
    calc: Calculator, frames: list[Atoms], with_stress: bool = True, progress: bool = False
) -> Predictions:
    """Run ``calc`` on every labelled frame (isolated atoms are skipped)."""
    from tqdm import tqdm

    out = Predictions()
    iterator = tqdm(frames, desc="evaluating", unit="str", disable=not progress, leave=False)
    for ref in iterator:
        if ref.info.get("config_type") == ISOLATED_ATOM:
            continue
        atoms = Atoms(ref.numbers, ref.positions, cell=ref.cell, pbc=ref.pbc)
        atoms.calc = calc
        n = len(atoms)
        if ENERGY_KEY in ref.info:
            out.energy_ref.append(float(ref.info[ENERGY_KEY]) / n)
            out.energy_pred.append(float(atoms.get_potential_energy()) / n)
        if FORCES_KEY in ref.arrays:
            out.forces_ref.append(np.asarray(ref.arrays[FORCES_KEY]))
            out.forces_pred.append(np.asarray(atoms.get_forces()))
        if with_stress and STRESS_KEY in ref.info and atoms.pbc.all():
            out.stress_ref.append(np.asarray(ref.info[STRESS_KEY]).reshape(3, 3) / GPa)
            out.stress_pred.append(atoms.get_stress(voigt=False) / GPa)
    return out


def _errors(ref: np.ndarray, pred: np.ndarray, scale: float = 1.0) -> dict[str, float] | None:
    if ref.size == 0:
        return None
    diff = (pred - ref) * scale
    return {
        "mae": float(np.mean(np.abs(diff))),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "n": int(ref.size),
    }


def error_metrics(pred: Predictions) -> dict[str, Any]:
    """Energy MAE/RMSE in meV/atom, force MAE/RMSE in eV/Å, stress MAE/RMSE in GPa."""
    metrics: dict[str, Any] = {}
    energy = _errors(*pred.arrays("energy"), scale=1000.0)
    if energy:
        metrics["energy_meV_per_atom"] = energy
    forces = _errors(*pred.arrays("forces"))
    if forces:
        metrics["forces_eV_per_A"] = forces
    stress = _errors(*pred.arrays("stress"))
    if stress:
        metrics["stress_GPa"] = stress
    return metrics


def parity_plots(pred: Predictions, folder: Path, label: str) -> list[Path]:
    from matbrain.training.plots import parity_plot

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, title, unit, scale in (
        ("energy", "energy", "meV/atom", 1000.0),
        ("forces", "force components", "eV/Å", 1.0),
        ("stress", "stress components", "GPa", 1.0),
    ):
        ref, prd = pred.arrays(kind)
        if ref.size == 0:
            continue
        if kind == "energy":  # per-atom energies relative to the mean: readable axes
            shift = float(ref.mean())
            ref, prd = ref - shift, prd - shift
        path = folder / f"parity_{kind}_{label}.png"
        mae = float(np.mean(np.abs(prd - ref)) * scale)
        parity_plot(ref * scale, prd * scale, f"{title} ({label})", unit, path, mae=mae)
        written.append(path)
    return written


def format_metrics(metrics: dict[str, dict[str, Any]]) -> str:
    """A plain table: one row per split."""
    head = f"{'split':<8} {'E MAE':>9} {'E RMSE':>9} {'F MAE':>8} {'F RMSE':>8} {'S MAE':>7} {'S RMSE':>7}"
    lines = [
        head,
        f"{'':<8} {'meV/atom':>9} {'meV/atom':>9} {'eV/Å':>8} {'eV/Å':>8} {'GPa':>7} {'GPa':>7}",
    ]

    def cell(m: dict[str, Any], key: str, stat: str, width: int, fmt: str) -> str:
        v = m.get(key, {}).get(stat)
        return f"{v:>{width}{fmt}}" if v is not None else f"{'-':>{width}}"

    for split, m in metrics.items():
        lines.append(
            f"{split:<8} {cell(m, 'energy_meV_per_atom', 'mae', 9, '.2f')} "
            f"{cell(m, 'energy_meV_per_atom', 'rmse', 9, '.2f')} "
            f"{cell(m, 'forces_eV_per_A', 'mae', 8, '.4f')} {cell(m, 'forces_eV_per_A', 'rmse', 8, '.4f')} "
            f"{cell(m, 'stress_GPa', 'mae', 7, '.3f')} {cell(m, 'stress_GPa', 'rmse', 7, '.3f')}"
        )
    return "\n".join(lines)


def _curve(
    history: list[dict[str, Any]], key: str, scale: float = 1.0
) -> list[tuple[float, float]]:
    return [(h["epoch"], scale * h[key]) for h in history if h.get(key) is not None]


def learning_curve_plot(history: list[dict[str, Any]], path: Path, step: str = "epoch") -> None:
    """Energy and force errors per epoch (pacemaker: per iteration) on training and validation,
    whatever the engine reports (RMSE preferred, else MAE); MACE's loss too when it is there."""

    fig, axes = subplots(1, 3, figsize=(14, 4), dpi=120)
    panels = (
        (axes[0], "e_per_atom", 1000.0, "energy error (meV/atom)"),
        (axes[1], "f", 1.0, "force error (eV/Å)"),
    )
    for ax, quantity, scale, ylabel in panels:
        for split, label in (("train", "training"), ("valid", "validation")):
            for stat in ("rmse", "mae"):
                points = _curve(history, f"{split}_{stat}_{quantity}", scale)
                if points:
                    ax.plot(*zip(*points, strict=True), label=f"{label} {stat.upper()}")
                    break
        ax.set_xlabel(step)
        ax.set_ylabel(ylabel)
        if ax.lines:
            ax.set_yscale("log")
            ax.legend()
    for key, label in (("train_loss", "training"), ("valid_loss", "validation")):
        points = _curve(history, key)
        if points:
            axes[2].plot(*zip(*points, strict=True), label=label)
    axes[2].set_xlabel(step)
    axes[2].set_ylabel("loss")
    if axes[2].lines:
        axes[2].set_yscale("log")
        axes[2].legend()
    else:
        axes[2].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
