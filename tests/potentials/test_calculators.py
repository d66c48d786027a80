"""The potential registry: names and files to ASE calculators, with provenance."""

from __future__ import annotations

import importlib.util

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
    atoms.calc = loaded.calc
    assert np.isfinite(atoms.get_potential_energy())


@pytest.mark.parametrize("name", ["chgnet", "sevennet"])
def test_universal_potentials_work_offline(name):
    loaded = load_potential(name, device="cpu")
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.calc = loaded.calc
    energy = atoms.get_potential_energy() / len(atoms)
    assert -6.0 < energy < -4.5  # PBE-like Si, eV/atom
    info = describe(loaded)
    assert info["backend"] == name and info["package_version"] != "unknown"


@pytest.mark.skipif(importlib.util.find_spec("pyace") is not None, reason="pyace is installed")
def test_ace_without_pyace_says_how_to_install(tmp_path):
    path = tmp_path / "p.yace"
    path.write_text("{}")
    with pytest.raises(ImportError, match="python-ace"):
        load_potential(path)
