"""Moving structures between extxyz files and the store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ase import Atoms

from matbrain.active.store import Labels, LabelStore
from matbrain.common.files import atomic_path


@dataclass
class ImportReport:
    completed: int = 0
    pending: int = 0
    duplicates: int = 0


def _labels_of(atoms: Atoms) -> Labels | None:
    """Energy, forces and stress of an imported frame; mlearn's ``stress_raw_6`` (VASP kBar,
    its own order and sign) becomes an ASE stress, as ``potential train`` converts it."""
    results = getattr(atoms.calc, "results", None) or {}
    if "energy" in results and "forces" in results:
        stress = results.get("stress")
        if stress is None and "stress_raw_6" in atoms.info:
            from ase.stress import full_3x3_to_voigt_6_stress

            from matbrain.potentials.data import mlearn_stress_to_ase

            stress = full_3x3_to_voigt_6_stress(mlearn_stress_to_ase(atoms))
        return Labels(results["energy"], results["forces"], stress)
    return None


def import_extxyz(
    store: LabelStore, path: Path, generation: int = 0, config_type: str | None = None
) -> ImportReport:
    """Frames with energy and forces are stored as completed, the others as pending."""
    import ase.io

    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        frames = ase.io.read(path, ":")
    except Exception as exc:  # ASE raises many types for malformed files
        raise ValueError(f"{path}: cannot read structures ({exc})") from exc
    report = ImportReport()
    oracle = {"name": "imported", "version": "", "settings": {"file": str(path)}}
    for atoms in frames:
        labels = _labels_of(atoms)
        row = store.add(
            atoms,
            generation=generation,
            config_type=config_type or str(atoms.info.get("config_type", "imported")),
            source=path.name,
            labels=labels,
            oracle=oracle if labels is not None else None,
        )
        if row is None:
            report.duplicates += 1
        elif labels is not None:
            report.completed += 1
        else:
            report.pending += 1
    return report


def export_extxyz(store: LabelStore, path: Path, generations: list[int] | None = None) -> int:
    """Write completed structures (energy, forces, stress, config_type, generation) to extxyz."""
    import ase.io

    frames = store.completed(generations)
    with atomic_path(path) as tmp:
        ase.io.write(tmp, frames, format="extxyz")
    return len(frames)
