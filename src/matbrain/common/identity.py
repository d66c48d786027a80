"""Structure identity: the same crystal, whatever the atom order or the origin of the cell.

The key is a canonical form: fractional coordinates wrapped into the cell and rounded, then for
every atom of the least frequent species taken as the origin the rows sorted by (species,
coordinates); the smallest of these candidates (and the rounded cell and the pbc) is hashed. A
translated or permuted copy gives the same key; a rotated cell does not (it is a different
cell matrix).
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
from ase import Atoms


def structure_key(atoms: Atoms, decimals: int = 4) -> str:
    numbers = np.asarray(atoms.numbers, dtype=np.int64)
    h = hashlib.sha256()
    h.update(np.round(np.asarray(atoms.cell.array, float), decimals).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    if len(atoms) == 0:
        return h.hexdigest()[:20]
    periodic = bool(np.all(atoms.pbc)) and atoms.cell.rank == 3
    coords = atoms.get_scaled_positions(wrap=True) if periodic else np.asarray(atoms.positions)
    counts = Counter(numbers.tolist())
    anchor_species = min(counts, key=lambda z: (counts[z], z))
    best: bytes | None = None
    for anchor in np.flatnonzero(numbers == anchor_species):
        shifted = coords - coords[anchor]
        rounded = np.round(shifted % 1.0 if periodic else shifted, decimals)
        if periodic:
            rounded = np.round(rounded % 1.0, decimals)  # 0.99999... rounds to 1.0: that is 0
        rows = np.column_stack([numbers, rounded]) + 0.0  # + 0.0 turns -0.0 into 0.0
        candidate = rows[np.lexsort(rows.T[::-1])].tobytes()
        best = candidate if best is None or candidate < best else best
    assert best is not None
    h.update(best)
    return h.hexdigest()[:20]
