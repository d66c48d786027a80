"""Bond statistics of a crystal graph (the kernel part of graph networks compares them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.data import covalent_radii

from matbrain.data.graphs import GraphConfig, build_graph
from matbrain.models.bond_descriptors import (
    CENTERS,
    N_BOND_DESCRIPTORS,
    N_CELL_DESCRIPTORS,
    N_CHEMISTRY_DESCRIPTORS,
    graph_bond_descriptors,
)

GRAPH = GraphConfig(cutoff_A=5.0, max_neighbors=12)
N = len(CENTERS)


def _descriptors(*structures, **blocks):
    return graph_bond_descriptors([build_graph(a, GRAPH) for a in structures], **blocks)


def test_rotation_translation_supercell_and_batching_leave_them_unchanged():
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    nacl.rattle(0.05, seed=1)
    moved = nacl.copy()
    moved.rotate(37, "x", rotate_cell=True)
    moved.rotate(58, "z", rotate_cell=True)
    moved.translate([0.3, -1.2, 0.7])
    structures = (nacl, moved, nacl.repeat((2, 1, 1)), bulk("Si", "diamond", a=5.43))
    d = _descriptors(*structures, chemistry=True)
    assert d.shape == (4, N_BOND_DESCRIPTORS + N_CHEMISTRY_DESCRIPTORS)
    np.testing.assert_allclose(d[1], d[0], atol=1e-5)
    np.testing.assert_allclose(d[2], d[0], atol=1e-5)
    np.testing.assert_allclose(_descriptors(nacl, chemistry=True)[0], d[0], atol=1e-9)  # batching
    assert not np.allclose(d[3], d[0])
    np.testing.assert_allclose(d[:, :N_BOND_DESCRIPTORS], _descriptors(*structures))


def test_the_cell_statistics_are_volume_per_atom_packing_and_size():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)  # 4 atoms in 46.66 Å^3
    graphs = [build_graph(a, GRAPH) for a in (cu, cu.repeat((2, 1, 1)), bulk("Cu", "fcc", a=3.3))]
    d = graph_bond_descriptors(graphs, cell=True)
    assert d.shape == (3, N_BOND_DESCRIPTORS + N_CELL_DESCRIPTORS)
    np.testing.assert_allclose(d[:, :N_BOND_DESCRIPTORS], graph_bond_descriptors(graphs))
    per_atom, packing, size = d[0, N_BOND_DESCRIPTORS:]
    sphere = 4 / 3 * np.pi * covalent_radii[29] ** 3
    assert per_atom == pytest.approx(np.log(3.6**3 / 4))
    assert packing == pytest.approx(np.log(3.6**3 / 4 / sphere))
    assert size == pytest.approx(np.log(4))
    # a supercell changes only the number of atoms; compression lowers volume and packing
    np.testing.assert_allclose(d[1, N_BOND_DESCRIPTORS:2 + N_BOND_DESCRIPTORS],
                               d[0, N_BOND_DESCRIPTORS:2 + N_BOND_DESCRIPTORS])  # fmt: skip
    assert d[1, -1] == pytest.approx(np.log(8))
    assert (d[2, N_BOND_DESCRIPTORS : 2 + N_BOND_DESCRIPTORS] < per_atom).all()


def test_they_see_ionicity_and_compression():
    x_na, x_cl = 0.93, 3.16
    nacl, si = _descriptors(bulk("NaCl", "rocksalt", a=5.64), bulk("Si", "diamond", a=5.43))
    mean_ionicity, max_ionicity = nacl[2 * N], nacl[2 * N + 1]
    # every first-shell bond of rock salt joins Na and Cl; the second shell joins like atoms
    assert 0 < mean_ionicity < x_cl - x_na and max_ionicity <= x_cl - x_na + 1e-6
    assert si[2 * N] == pytest.approx(0) and si[N : 2 * N].sum() == pytest.approx(0)
    loose, tight = _descriptors(bulk("Cu", "fcc", a=3.7), bulk("Cu", "fcc", a=3.4))
    shortest = 2 * N + 2
    assert tight[shortest] < loose[shortest]  # relative bond length d / (r_i + r_j)
    weights = torch.as_tensor(CENTERS, dtype=torch.float64).numpy()
    histogram_mean = lambda d: (d[:N] * weights).sum() / d[:N].sum()  # noqa: E731
    assert histogram_mean(tight) < histogram_mean(loose)


def test_the_bond_chemistry_tells_elements_apart_where_the_bond_statistics_cannot():
    """Diamond Si and diamond Ge scaled to the same relative bond length have the same bond
    statistics (same relative lengths, no ionicity): the bond chemistry sees a row apart."""
    r_si, r_ge = covalent_radii[14], covalent_radii[32]
    si = bulk("Si", "diamond", a=5.43)
    ge = bulk("Ge", "diamond", a=5.43 * r_ge / r_si)
    d = _descriptors(si, ge, chemistry=True)
    np.testing.assert_allclose(
        d[1, :N_BOND_DESCRIPTORS], d[0, :N_BOND_DESCRIPTORS], rtol=1e-5, atol=1e-6
    )
    chemistry = d[:, N_BOND_DESCRIPTORS:]
    assert np.abs(chemistry[1] - chemistry[0]).max() > 0.1


def test_the_coordination_numbers_are_twelve_in_fcc_and_four_in_diamond():
    d = _descriptors(bulk("Cu", "fcc", a=3.6), bulk("Si", "diamond", a=5.43), chemistry=True)
    mean, spread, largest, smallest = d[:, -4:].T
    np.testing.assert_allclose(mean, [12, 4], atol=0.05)
    np.testing.assert_allclose(spread, [0, 0], atol=1e-6)
    np.testing.assert_allclose(largest, smallest, atol=1e-9)
    # with the cell after them
    cell = _descriptors(bulk("Cu", "fcc", a=3.6), cell=True, chemistry=True)
    assert cell.shape == (1, N_BOND_DESCRIPTORS + N_CHEMISTRY_DESCRIPTORS + N_CELL_DESCRIPTORS)
    np.testing.assert_allclose(cell[0, :-N_CELL_DESCRIPTORS], d[0], atol=1e-9)
