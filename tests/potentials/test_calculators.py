"""The potential registry: names and files to ASE calculators, with provenance."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from ase.build import bulk

from matbrain.potentials.calculators import describe, load_potential


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="chgnet, sevennet"):
        load_potential("not-a-potential")


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_potential(tmp_path / "gone.model")


def test_run_folder_resolves_to_its_model(trained_run):
    loaded = load_potential(trained_run.run_dir)
    assert loaded.backend == "mace" and loaded.model.endswith("mace.model")
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.rattle(0.05, seed=1)
    atoms.calc = loaded.calc
    from mace.calculators import MACECalculator

    direct = atoms.copy()
    direct.calc = MACECalculator(model_paths=str(trained_run.model_path), device="cpu",
                                 default_dtype="float64")  # fmt: skip
    # the same model as loading the file by hand, not just some finite number
    assert atoms.get_potential_energy() == pytest.approx(direct.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), direct.get_forces(), atol=1e-9)


@pytest.mark.parametrize("name", ["chgnet", "sevennet"])
def test_universal_potentials_work_offline(name):
    loaded = load_potential(name, device="cpu")
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.calc = loaded.calc
    energy = atoms.get_potential_energy() / len(atoms)
    # Materials Project (PBE) diamond Si: -5.42 eV/atom; CHGNet gives -5.31, SevenNet-0 -5.40
    assert energy == pytest.approx(-5.42, abs=0.15)
    info = describe(loaded)
    assert info["backend"] == name and info["package_version"] != "unknown"


def test_ace_without_pyace_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyace", None)  # as if python-ace were not installed
    path = tmp_path / "p.yace"
    path.write_text("{}")
    with pytest.raises(ImportError, match="python-ace"):
        load_potential(path)
