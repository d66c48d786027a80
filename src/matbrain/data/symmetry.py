"""Facts a crystal's point group fixes exactly, whatever a model predicts.

The piezoelectric tensor d_ij is odd under inversion, so it vanishes in the eleven
centrosymmetric point groups; it vanishes in point group 432 as well (Nye, *Physical Properties
of Crystals*, ch. VII). On the bundled JARVIS subset every one of the 20 piezo labels agrees:
the 8 centrosymmetric crystals have max |d_ij| = 0, the 12 others > 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

# Hermann-Mauguin symbols as spglib writes them
CENTROSYMMETRIC_POINT_GROUPS = frozenset(
    {"-1", "2/m", "mmm", "4/m", "4/mmm", "-3", "-3m", "6/m", "6/mmm", "m-3", "m-3m"}
)
NO_PIEZOELECTRICITY = CENTROSYMMETRIC_POINT_GROUPS | {"432"}

# Å: tolerant of CIFs written with four or five decimals, far below real distortions
SYMPREC = 0.01


def point_group(atoms: Atoms, symprec: float = SYMPREC) -> str | None:
    """The crystal's point group (Hermann-Mauguin), or None where spglib finds none."""
    import spglib

    cell = (
        np.asarray(atoms.cell).tolist(),
        atoms.get_scaled_positions(wrap=True).tolist(),
        atoms.numbers.tolist(),
    )
    dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
    return None if dataset is None else str(dataset.pointgroup).strip()


def piezo_vanishes(structures: Sequence[Atoms], symprec: float = SYMPREC) -> np.ndarray:
    """(n,) bool: the point group forces every piezoelectric coefficient to zero."""
    return np.array([point_group(a, symprec) in NO_PIEZOELECTRICITY for a in structures], bool)
