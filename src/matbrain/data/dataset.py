"""The in-memory dataset: structures, ids and a (n, n_properties) label matrix with NaN = missing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from matbrain.properties import Property


def structure_fingerprint(atoms: Atoms) -> bytes:
    """Bytes that change whenever the structure changes (cell, numbers, positions)."""
    return (
        np.asarray(atoms.cell.array, dtype=np.float64).round(8).tobytes()
        + np.asarray(atoms.numbers, dtype=np.int64).tobytes()
        + np.asarray(atoms.get_scaled_positions(wrap=False), dtype=np.float64).round(8).tobytes()
    )


@dataclass
class CrystalDataset:
    """Structures with multi-property labels.

    Attributes
    ----------
    ids : one identifier per structure (JARVIS jid or file stem)
    structures : the crystals
    targets : (n_structures, n_properties) array; NaN marks a missing label
    properties : the columns of ``targets``
    source : where the data came from (recorded in the run)
    is_jarvis : whether ids are JARVIS jids (then official leaderboard splits apply)
    """

    ids: list[str]
    structures: list[Atoms]
    targets: np.ndarray
    properties: list[Property]
    source: str
    is_jarvis: bool = False
    # what reading skipped or changed (unreadable files, NaN labels): recorded in the run
    read_report: dict[str, Any] = field(default_factory=dict)
    _hash: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.structures) == len(self.targets)):
            raise ValueError("ids, structures and targets must have the same length")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("structure ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def structure_hash(self) -> str:
        """Hash of ids and structures only (labels excluded): the graph cache key."""
        if self._hash is None:
            h = hashlib.sha256()
            for sid, atoms in zip(self.ids, self.structures, strict=True):
                h.update(sid.encode())
                h.update(structure_fingerprint(atoms))
            self._hash = h.hexdigest()
        return self._hash

    def label_hash(self) -> str:
        return hashlib.sha256(np.nan_to_num(self.targets, nan=1e300).tobytes()).hexdigest()[:16]

    def subset(self, indices: np.ndarray | list[int]) -> CrystalDataset:
        idx = list(map(int, indices))
        return CrystalDataset(
            ids=[self.ids[i] for i in idx],
            structures=[self.structures[i] for i in idx],
            targets=self.targets[idx],
            properties=self.properties,
            source=self.source,
            is_jarvis=self.is_jarvis,
            read_report=self.read_report,
        )

    def label_counts(self) -> dict[str, int]:
        return {
            p.name: int((~np.isnan(self.targets[:, j])).sum())
            for j, p in enumerate(self.properties)
        }
