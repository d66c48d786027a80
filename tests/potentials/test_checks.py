"""The elastic-constant check against an independent route (EMT stands in for a potential)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.eos import EquationOfState
from ase.units import GPa

from matbrain.potentials.checks import cubic_elastic_constants


def test_cubic_elastic_constants_give_the_equation_of_states_bulk_modulus():
    copper = bulk("Cu", "fcc", a=3.59, cubic=True)  # EMT's equilibrium
    constants = cubic_elastic_constants(copper, EMT())
    volumes, energies = [], []
    for scale in np.linspace(0.98, 1.02, 7):
        atoms = copper.copy()
        atoms.set_cell(copper.cell * scale, scale_atoms=True)
        atoms.calc = EMT()
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    bulk_modulus = EquationOfState(volumes, energies).fit()[2] / GPa
    assert constants["B"] == pytest.approx(bulk_modulus, rel=0.01)
    assert constants["C11"] > constants["C12"] > 0  # mechanically stable, not isotropic
