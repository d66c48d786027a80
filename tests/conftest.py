"""Shared fixtures: small real structures and an isolated cache/output folder per test session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from emt_data import emt_cu_frames


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["MATBRAIN_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def triclinic() -> Atoms:
    """A rattled, sheared two-species cell: no symmetry to hide indexing mistakes."""
    atoms = bulk("NaCl", "rocksalt", a=5.6).repeat((1, 2, 1))
    atoms.set_cell(
        atoms.cell.array + np.array([[0.0, 0.4, 0.3], [0.5, 0.0, 0.2], [0.3, 0.6, 0.0]]),
        scale_atoms=True,
    )
    atoms.rattle(0.1, seed=3)
    return atoms


@pytest.fixture(scope="session")
def bundled_structures():
    from matbrain.data.jarvis import jarvis_dataset
    from matbrain.properties import resolve_properties

    return jarvis_dataset(resolve_properties(None))


# One MACE potential trained once per session on EMT-labelled Cu (EMT: unit tests only).
@pytest.fixture(scope="session")
def cu_xyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import ase.io

    path = tmp_path_factory.mktemp("emt") / "cu_emt.xyz"
    ase.io.write(path, emt_cu_frames(), format="extxyz")
    return path


@pytest.fixture(scope="session")
def trained_run(cu_xyz: Path, tmp_path_factory: pytest.TempPathFactory):
    """A smoke-level MACE potential (energy, forces, stress) trained by mace-torch in this session."""
    from matbrain.potentials.config import resolve_mace_config
    from matbrain.potentials.pipeline import train_potential

    root = tmp_path_factory.mktemp("potentials")
    cfg = resolve_mace_config(
        "smoke",
        overrides={
            "data": str(cu_xyz),
            "with_stress": True,
            "epochs": 10,
            "batch_size": 4,
            "lr": 0.01,
            "output_root": str(root),
            "num_channels": 8,
            "test_fraction": 0.1,  # a held-out split scored in the run (the default holds none back)
        },
    )
    return train_potential(cfg, progress=False)


@pytest.fixture(scope="session")
def trained_calc(trained_run):
    from matbrain.potentials.calculators import load_potential

    return load_potential(trained_run.model_path).calc


@pytest.fixture(scope="session")
def postgres_server():
    from postgres_server import throwaway_server

    with throwaway_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh empty PostgreSQL database for one test (skipped without PostgreSQL)."""
    from postgres_server import fresh_database

    if postgres_server is None:
        pytest.skip("no PostgreSQL (install it, or set MATBRAIN_TEST_POSTGRES=postgresql://...)")
    with fresh_database(postgres_server) as url:
        yield url
