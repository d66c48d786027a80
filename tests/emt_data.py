"""Small labelled sets for potential tests: EMT stands in for DFT in unit tests only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

# small subsets of the mlearn sets, carried by the repository (tests/data/mlearn/README.md)
MLEARN = Path(__file__).resolve().parent / "data" / "mlearn"


def emt_labelled(atoms: Atoms) -> Atoms:
    """A copy with EMT energy, forces and stress stored as calculator results (like extxyz)."""
    work = atoms.copy()
    work.calc = EMT()
    results = {
        "energy": work.get_potential_energy(),
        "forces": work.get_forces(),
        "stress": work.get_stress(),
    }
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, **results)
    return out


def emt_cu_frames(n: int = 32, seed: int = 0) -> list[Atoms]:
    """Rattled and strained 8-atom Cu cells labelled with EMT."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
        strain = np.eye(3) + rng.uniform(-0.04, 0.04, size=(3, 3))
        atoms.set_cell(atoms.cell.array @ (strain + strain.T) / 2, scale_atoms=True)
        atoms.rattle(0.08, seed=seed * 1000 + i)
        frames.append(emt_labelled(atoms))
    return frames
