"""Labelled records -> pacemaker's pickled DataFrame, with a fixed-seed train/validation split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from matbrain.potentials.data import energy_and_forces


def split_records(
    frames: list[Atoms], valid_fraction: float = 0.1, seed: int = 42
) -> tuple[list[Atoms], list[Atoms]]:
    """Shuffle with ``seed`` and cut: (train, validation), no structure in both."""
    if len(frames) < 2:
        raise ValueError(f"need at least 2 labelled structures to fit, got {len(frames)}")
    order = np.random.default_rng(seed).permutation(len(frames))
    n_valid = max(1, int(round(valid_fraction * len(frames))))
    valid = [frames[i] for i in sorted(order[:n_valid])]
    train = [frames[i] for i in sorted(order[n_valid:])]
    return train, valid


def write_pacemaker_dataset(frames: list[Atoms], path: Path) -> None:
    """Columns ``ase_atoms``, ``energy`` (eV), ``forces`` (eV/Å), ``config_type``, ``db_id``."""
    import pandas as pd

    rows = []
    for atoms in frames:
        bare = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        energy, forces = energy_and_forces(atoms)
        rows.append(
            {
                "ase_atoms": bare,
                "energy": energy,
                "forces": forces.tolist(),
                "config_type": str(atoms.info.get("config_type", "unknown")),
                "db_id": atoms.info.get("db_id"),
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_pickle(path, compression="gzip")
