"""Shared fixtures: small real structures and an isolated cache/output folder per test session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
