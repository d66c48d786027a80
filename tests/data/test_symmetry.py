"""Point groups that forbid piezoelectricity, and the zeros they impose on predictions."""

from __future__ import annotations

import numpy as np
from ase.build import bulk
from ase.spacegroup import crystal

from matbrain.data.symmetry import piezo_vanishes, point_group
from matbrain.properties import physical_predictions, resolve_properties


def _beta_mn():
    """beta-Mn, P4_132: point group 432, without inversion but without piezoelectricity."""
    return crystal(
        ["Mn", "Mn"],
        [(0.0636, 0.0636, 0.0636), (0.125, 0.2022, 0.4522)],
        spacegroup=213,
        cellpar=[6.315, 6.315, 6.315, 90, 90, 90],
    )


def test_point_groups_of_known_crystals():
    assert point_group(bulk("NaCl", "rocksalt", a=5.64)) == "m-3m"
    assert point_group(bulk("GaAs", "zincblende", a=5.65)) == "-43m"
    assert point_group(bulk("ZnO", "wurtzite", a=3.25, c=5.2)) == "6mm"
    assert point_group(_beta_mn()) == "432"


def test_piezo_vanishes_for_centrosymmetric_and_432_only():
    rattled = bulk("NaCl", "rocksalt", a=5.64).repeat(2)
    rattled.rattle(0.05, seed=1)  # a real distortion (0.05 Å) breaks the inversion
    structures = [
        bulk("NaCl", "rocksalt", a=5.64),
        bulk("Si", "diamond", a=5.43),  # Fd-3m: centrosymmetric
        _beta_mn(),
        bulk("GaAs", "zincblende", a=5.65),
        bulk("ZnO", "wurtzite", a=3.25, c=5.2),
        rattled,
    ]
    assert piezo_vanishes(structures).tolist() == [True, True, True, False, False, False]


def test_physical_predictions_zero_only_the_piezo_column():
    props = resolve_properties(["band_gap", "piezo_max_dij"])
    values = np.array([[1.0, 5.0], [2.0, 7.0]])
    out = physical_predictions(
        values, props, [np.array([11, 17]), np.array([31, 33])], np.array([True, False])
    )
    assert out.tolist() == [[1.0, 0.0], [2.0, 7.0]]
    # without the symmetry facts nothing changes (a model without the piezo column, say)
    np.testing.assert_array_equal(
        physical_predictions(values, props, [np.array([11, 17]), np.array([31, 33])]), values
    )
