"""Relaxation of positions and cell with any ASE calculator."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from matbrain.simulation.relax import RelaxConfig, relax


def test_relax_finds_the_emt_lattice_constant():
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True)
    atoms.rattle(0.05, seed=0)
    given = atoms.copy()
    relaxed, result = relax(atoms, EMT(), RelaxConfig(fmax_eV_per_A=0.005, smax_GPa=0.01))
    assert result.converged
    assert result.final.energy_eV < result.initial.energy_eV
    a = relaxed.cell.cellpar()[0]
    reference = bulk("Cu", "fcc", a=3.59, cubic=True)  # EMT's minimum, by a volume scan below
    scan = []
    for x in np.linspace(3.55, 3.63, 17):
        trial = bulk("Cu", "fcc", a=x, cubic=True)
        trial.calc = EMT()
        scan.append((trial.get_potential_energy(), x))
    assert a == pytest.approx(min(scan)[1], abs=0.006)
    assert len(relaxed) == len(reference)
    # the input structure is left as it was given
    assert np.array_equal(atoms.positions, given.positions) and np.array_equal(
        atoms.cell, given.cell
    )


def test_fixed_cell_keeps_the_cell():
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    atoms.rattle(0.1, seed=1)
    relaxed, result = relax(atoms, EMT(), RelaxConfig(relax_cell=False))
    assert result.converged and result.final.max_stress_GPa is None
    np.testing.assert_allclose(relaxed.cell.array, atoms.cell.array)
    assert result.final.max_force_eV_per_A < 0.02


def test_step_limit_reports_not_converged():
    atoms = bulk("Cu", "fcc", a=3.9, cubic=True)
    atoms.rattle(0.2, seed=2)
    _, result = relax(atoms, EMT(), RelaxConfig(max_steps=2))
    assert not result.converged and result.steps == 2


def test_bad_tolerances_are_refused():
    with pytest.raises(ValueError, match="positive"):
        RelaxConfig(fmax_eV_per_A=0)


def test_relax_file_writes_cif_trajectory_and_report(tmp_path, trained_run):
    from matbrain.simulation.relax import relax_file

    strained = bulk("Cu", "fcc", a=3.8, cubic=True)
    strained.rattle(0.05, seed=4)
    cif = tmp_path / "Cu_strained.cif"
    ase.io.write(cif, strained)
    result = relax_file(cif, str(trained_run.run_dir), tmp_path / "out",
                        RelaxConfig(fmax_eV_per_A=0.05, smax_GPa=0.2, max_steps=400))  # fmt: skip
    assert result.converged and result.final.energy_eV < result.initial.energy_eV
    assert result.potential["backend"] == "mace"
    out = tmp_path / "out"
    relaxed = ase.io.read(out / "Cu_strained_relaxed.cif")
    assert len(ase.io.read(out / "Cu_strained.traj", ":")) == result.steps + 1
    assert relaxed.get_volume() == pytest.approx(result.final.volume_A3, rel=1e-4)
    report = json.loads((out / "report.json").read_text())
    assert report["converged"] and "before" in (out / "report.txt").read_text()
