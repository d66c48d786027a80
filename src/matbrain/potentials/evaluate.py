"""Energy / force / stress errors of any ASE calculator on labelled structures, with parity plots,
per-structure errors and where the force error comes from.

A single MAE hides which structures make it. ``Predictions.structures`` keeps one row per
structure (its id, configuration type, energy error, force MAE, mean reference force and shortest
interatomic distance; ``write_structure_errors`` saves them as CSV); ``force_error_breakdown`` groups them, by ``config_type`` where the data
carry several, else by the structure's mean reference force (a proxy for temperature), and says
what share of the force MAE each group makes. On mlearn Ni it shows that the six hottest test
snapshots (mean |F| about 2.9 eV/Å, a fifth of the force components) make two thirds of a linear
ACE's force MAE.
"""

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

STRUCTURE_ID_KEYS = ("jid", "id", "name", "label")
# groups by mean reference force per structure when the data carry no configuration types
FORCE_BINS_EV_PER_A = (0.1, 0.5, 1.0, 2.0)


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
    structures: list[dict[str, Any]] = field(default_factory=list)  # one row per structure

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
    for index, ref in enumerate(iterator):
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
        out.structures.append(_structure_row(index, ref, atoms, out))
    return out


def _shortest_distance(atoms: Atoms, cutoff: float = 4.0) -> float:
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2 and not atoms.pbc.any():
        return float("nan")
    distances = neighbor_list("d", atoms, cutoff)
    return float(distances.min()) if distances.size else float("nan")


def _structure_row(index: int, ref: Atoms, atoms: Atoms, out: Predictions) -> dict[str, Any]:
    """Errors of the structure just appended to ``out`` (NaN where it has no such label)."""
    nan = float("nan")
    row: dict[str, Any] = {
        "index": index,
        "id": str(next((ref.info[k] for k in STRUCTURE_ID_KEYS if k in ref.info), index)),
        "config_type": str(ref.info.get("config_type", "")),
        "n_atoms": len(atoms),
        "energy_error_meV_per_atom": nan,
        "forces_mae_eV_per_A": nan,
        "mean_force_eV_per_A": nan,
        "shortest_distance_A": _shortest_distance(atoms),
    }
    if ENERGY_KEY in ref.info:
        row["energy_error_meV_per_atom"] = 1000.0 * (out.energy_pred[-1] - out.energy_ref[-1])
    if FORCES_KEY in ref.arrays:
        f_ref, f_pred = out.forces_ref[-1], out.forces_pred[-1]
        row["forces_mae_eV_per_A"] = float(np.mean(np.abs(f_pred - f_ref)))
        row["mean_force_eV_per_A"] = float(np.linalg.norm(f_ref, axis=1).mean())
    return row


def _force_bin(mean_force: float) -> str:
    edges = FORCE_BINS_EV_PER_A
    if mean_force < edges[0]:
        return f"mean |F| < {edges[0]:g}"
    for low, high in zip(edges, edges[1:], strict=False):
        if mean_force < high:
            return f"mean |F| {low:g}-{high:g}"
    return f"mean |F| >= {edges[-1]:g}"


def force_error_breakdown(pred: Predictions) -> list[dict[str, Any]]:
    """Where the force MAE comes from: one row per group of structures, with its share of the
    force components and its share of the summed absolute error (the shares of the MAE, which
    add up to 1). Groups are the data's ``config_type`` values where there are several, else
    bins of the structure's mean reference force (eV/Å)."""
    rows = _with_forces(pred)
    if not rows:
        return []
    by_type = len({r["config_type"] for r in rows}) > 1
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        key = r["config_type"] if by_type else _force_bin(r["mean_force_eV_per_A"])
        groups.setdefault(key, []).append(r)
    components = sum(3 * r["n_atoms"] for r in rows)
    total = sum(3 * r["n_atoms"] * r["forces_mae_eV_per_A"] for r in rows)
    out = []
    for key, members in groups.items():
        n = sum(3 * r["n_atoms"] for r in members)
        summed = sum(3 * r["n_atoms"] * r["forces_mae_eV_per_A"] for r in members)
        energies = [abs(r["energy_error_meV_per_atom"]) for r in members]
        energies = [e for e in energies if not np.isnan(e)]
        out.append({
            "group": key,
            "grouped_by": "config_type" if by_type else "mean_force",
            "structures": len(members),
            "component_share": n / components,
            "forces_mae_eV_per_A": summed / n,
            "mae_share": summed / total if total > 0 else 0.0,
            "energy_mae_meV_per_atom": float(np.mean(energies)) if energies else None,
            "mean_force_eV_per_A": float(np.mean([r["mean_force_eV_per_A"] for r in members])),
        })  # fmt: skip
    if by_type:
        return sorted(out, key=lambda g: -g["mae_share"])
    return sorted(out, key=lambda g: g["mean_force_eV_per_A"])


def format_breakdown(groups: list[dict[str, Any]], worst: list[dict[str, Any]]) -> str:
    """The breakdown and the structures with the largest force errors, as plain text."""
    if not groups:
        return ""
    lines = [f"{'force error by ' + groups[0]['grouped_by'].replace('_', ' '):<26} {'structures':>10} "
             f"{'of comps':>8} {'F MAE':>8} {'of MAE':>7} {'E MAE':>9}",
             f"{'':<26} {'':>10} {'':>8} {'eV/Å':>8} {'':>7} {'meV/atom':>9}"]  # fmt: skip
    for g in groups:
        energy = g["energy_mae_meV_per_atom"]
        lines.append(
            f"{g['group'][:26]:<26} {g['structures']:>10} {g['component_share']:>8.0%} "
            f"{g['forces_mae_eV_per_A']:>8.4f} {g['mae_share']:>7.0%} "
            f"{(f'{energy:.2f}' if energy is not None else '-'):>9}"
        )
    if worst:
        lines.append("largest force errors: " + ", ".join(
            f"{r['id']} ({r['forces_mae_eV_per_A']:.3f} eV/Å, mean |F| {r['mean_force_eV_per_A']:.2f}, "
            f"shortest distance {r['shortest_distance_A']:.2f} Å)" for r in worst))  # fmt: skip
    return "\n".join(lines)


def _with_forces(pred: Predictions) -> list[dict[str, Any]]:
    return [r for r in pred.structures if not np.isnan(r["forces_mae_eV_per_A"])]


def worst_structures(pred: Predictions, k: int = 3) -> list[dict[str, Any]]:
    return sorted(_with_forces(pred), key=lambda r: -r["forces_mae_eV_per_A"])[:k]


def write_structure_errors(pred: Predictions, path: Path) -> Path:
    """One CSV row per structure: id, configuration type, atoms, energy error (meV/atom, signed),
    force MAE (eV/Å), mean reference force (eV/Å), shortest interatomic distance (Å)."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["index", "id", "config_type", "n_atoms", "energy_error_meV_per_atom",
              "forces_mae_eV_per_A", "mean_force_eV_per_A", "shortest_distance_A"]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(pred.structures)
    return path


def read_structure_errors(path: Path) -> Predictions:
    """The per-structure rows ``write_structure_errors`` saved, as a ``Predictions`` that
    ``force_error_breakdown`` and ``worst_structures`` take (the label arrays stay empty)."""
    import csv

    numeric = {"energy_error_meV_per_atom", "forces_mae_eV_per_A", "mean_force_eV_per_A",
               "shortest_distance_A"}  # fmt: skip
    with path.open(newline="") as handle:
        rows = [
            {
                k: float(v) if k in numeric else int(v) if k in ("index", "n_atoms") else v
                for k, v in row.items()
            }
            for row in csv.DictReader(handle)
        ]
    return Predictions(structures=rows)


@dataclass
class Evaluation:
    """What evaluating a potential on one set of labelled structures gives."""

    metrics: dict[str, Any]  # error_metrics
    groups: list[dict[str, Any]]  # force_error_breakdown
    report: str  # the breakdown and the worst structures, as text ("" without forces)
    plots: list[Path] = field(default_factory=list)


def evaluate(
    calc: Calculator,
    frames: list[Atoms],
    with_stress: bool = True,
    plots: tuple[Path, str] | None = None,
    table: Path | None = None,
    progress: bool = False,
) -> Evaluation:
    """Errors of ``calc`` on ``frames``; with ``plots`` = (folder, label) the parity plots, with
    ``table`` the per-structure CSV."""
    pred = predict(calc, frames, with_stress=with_stress, progress=progress)
    groups = force_error_breakdown(pred)
    out = Evaluation(error_metrics(pred), groups, format_breakdown(groups, worst_structures(pred)))
    if plots is not None:
        out.plots = parity_plots(pred, *plots)
    if table is not None:
        write_structure_errors(pred, table)
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
