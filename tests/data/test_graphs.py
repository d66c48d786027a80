from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list

from matbrain.data.graphs import BadStructureError, GraphConfig, build_graph, neighbor_pairs


def _pairs(i, j, d):
    return sorted((int(a), int(b), round(float(x), 6)) for a, b, x in zip(i, j, d, strict=True))


@pytest.mark.parametrize("cutoff", [3.0, 5.0, 8.0])
def test_vesin_neighbours_match_ase_on_triclinic_cells(triclinic, cutoff):
    i, j, vec = neighbor_pairs(triclinic, cutoff, backend="vesin")
    ai, aj, ad = neighbor_list("ijd", triclinic, cutoff)
    assert len(i) == len(ai) > 0
    assert _pairs(i, j, np.linalg.norm(vec, axis=1)) == _pairs(ai, aj, ad)
    # the vector points from the center to the neighbour's periodic image
    _, _, D = neighbor_list("ijD", triclinic, cutoff)
    assert np.allclose(np.sort(np.linalg.norm(vec, axis=1)), np.sort(np.linalg.norm(D, axis=1)))


def test_cap_keeps_nearest_and_ties(triclinic):
    full = build_graph(triclinic, GraphConfig(cutoff_A=8.0, max_neighbors=1000))
    capped = build_graph(triclinic, GraphConfig(cutoff_A=8.0, max_neighbors=6))
    for atom in range(len(triclinic)):
        d_full = np.sort(full.distances[full.center == atom])
        d_cap = np.sort(capped.distances[capped.center == atom])
        assert len(d_cap) >= 6
        assert np.allclose(d_cap[:6], d_full[:6], atol=1e-5)
        assert d_cap.max() <= d_full[5] + 1e-3 + 1e-5


def test_ties_are_kept_so_fcc_has_full_shell():
    from ase.build import bulk

    g = build_graph(bulk("Cu", "fcc", a=3.6), GraphConfig(cutoff_A=6.0, max_neighbors=8))
    assert len(g.center) == 12  # 12 equidistant nearest neighbours, none dropped by the cap of 8


def test_angles_of_simple_cubic_are_90_and_180_degrees():
    atoms = Atoms("Po", cell=np.eye(3) * 2.0, pbc=True)
    g = build_graph(atoms, GraphConfig(cutoff_A=2.1))
    assert len(g.center) == 6
    assert len(g.triplet_a) == 6 * 5
    angles = np.degrees(np.arccos(g.cos_angle))
    assert np.sum(np.isclose(angles, 90.0, atol=1e-4)) == 24
    assert np.sum(np.isclose(angles, 180.0, atol=1e-4)) == 6
    assert np.all(g.triplet_a != g.triplet_b)
    assert np.all(g.center[g.triplet_a] == g.center[g.triplet_b])


def test_angle_of_bent_molecule_in_a_big_box():
    # water-like: O at origin, H at 1 Å along x and along (cos 104.5°, sin 104.5°)
    theta = np.radians(104.5)
    pos = [[5, 5, 5], [6, 5, 5], [5 + np.cos(theta), 5 + np.sin(theta), 5]]
    atoms = Atoms("OHH", positions=pos, cell=np.eye(3) * 10, pbc=True)
    g = build_graph(atoms, GraphConfig(cutoff_A=1.5, min_distance_A=0.5))
    at_o = g.center[g.triplet_a] == 0
    assert np.allclose(np.degrees(np.arccos(g.cos_angle[at_o])), 104.5, atol=1e-3)
    # at each H, the two bonds are to O and to the other H (1.59 Å > cutoff): only O -> no angle
    assert at_o.sum() == 2


def test_bad_structures_raise_clear_errors():
    overlapping = Atoms("Cu2", positions=[[0, 0, 0], [0.1, 0, 0]], cell=np.eye(3) * 3, pbc=True)
    with pytest.raises(BadStructureError, match="overlapping"):
        build_graph(overlapping)
    isolated = Atoms("Cu", cell=np.eye(3) * 20, pbc=True)
    with pytest.raises(BadStructureError, match="no neighbour"):
        build_graph(isolated)
