"""Structure identity: translated and permuted copies are the same structure, others are not."""

from __future__ import annotations

import numpy as np
from ase.build import bulk

from matbrain.active.store import LabelStore
from matbrain.common.identity import structure_key


def _structure():
    atoms = bulk("NaCl", "rocksalt", a=5.6, cubic=True)
    atoms.rattle(0.05, seed=4)
    return atoms


def test_translated_and_permuted_copy_has_the_same_key():
    atoms = _structure()
    copy = atoms[np.random.default_rng(0).permutation(len(atoms))]
    copy.translate([1.3, -0.7, 2.9])  # out of the cell: wrapped back
    assert structure_key(copy) == structure_key(atoms)


def test_different_structures_have_different_keys():
    atoms = _structure()
    moved = atoms.copy()
    moved.positions[0] += [0.01, 0, 0]
    swapped = atoms.copy()
    swapped.numbers[[0, 1]] = swapped.numbers[[1, 0]]
    strained = atoms.copy()
    strained.set_cell(atoms.cell.array * 1.01, scale_atoms=True)
    keys = {structure_key(a) for a in (atoms, moved, swapped, strained)}
    assert len(keys) == 4


def test_store_finds_a_translated_permuted_copy(tmp_path):
    store = LabelStore(str(tmp_path / "al.db"))
    atoms = _structure()
    assert store.add(atoms) is not None
    copy = atoms[::-1]
    copy.translate([0.4, 0.4, 0.0])
    assert store.add(copy) is None  # a duplicate
    assert store.counts()["pending"] == 1
