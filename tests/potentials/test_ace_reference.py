"""ACE energies in the frame of the data: reference energies read from pacemaker's metadata and
written into the .yace that every evaluator reads."""

from __future__ import annotations

import json

import pytest
from ase.build import bulk

from matbrain.potentials.ace.reference import (
    pacemaker_reference_energies,
    set_yace_reference_energies,
    yace_reference_energies,
)


@pytest.fixture
def empty_yace(tmp_path):
    pyace = pytest.importorskip("pyace")
    bconf = pyace.create_multispecies_basis_config({
        "deltaSplineBins": 0.001, "elements": ["Al", "Cu"],
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1],
                               "ndensity": 1}},
        "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": 4.0,
                          "dcut": 0.01, "NameOfCutoffFunction": "cos"}},
        "functions": {"number_of_functions_per_element": 4,
                      "ALL": {"nradmax_by_orders": [4, 2], "lmax_by_orders": [0, 1]}},
    })  # fmt: skip
    path = tmp_path / "p.yace"
    pyace.ACEBBasisSet(bconf).to_ACECTildeBasisSet().save_yaml(str(path))
    return path


def test_reference_energies_are_added_per_atom_by_pyace(empty_yace):
    from pyace import PyACECalculator

    set_yace_reference_energies(empty_yace, {"Cu": -3.5, "Al": -2.25})
    assert yace_reference_energies(empty_yace) == {"Al": -2.25, "Cu": -3.5}
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms[0].symbol = "Al"
    atoms.calc = PyACECalculator(str(empty_yace))  # all coefficients zero: only the E0s remain
    assert atoms.get_potential_energy() == pytest.approx(-3.5 - 2.25)


def test_missing_element_is_an_error(empty_yace):
    with pytest.raises(ValueError, match="no reference energy for Al"):
        set_yace_reference_energies(empty_yace, {"Cu": -3.5})


def test_pacemaker_auto_reference_energy_includes_its_shift(tmp_path):
    # pacemaker fits E - sum(e_el) + shift * N, so E0_el = e_el - shift
    meta = {"metadata": {"reference_energy": json.dumps({"Cu": -4.0, "shift": 0.25})}}
    path = tmp_path / "out.yaml"
    path.write_text(json.dumps(meta))
    assert pacemaker_reference_energies(path) == {"Cu": -4.25}
    path.write_text(json.dumps({"metadata": {}}))
    assert pacemaker_reference_energies(path) == {}
