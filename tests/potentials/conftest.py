"""One MACE model trained once per test session on EMT-labelled Cu (EMT: unit tests only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from emt_data import emt_cu_frames


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
            "epochs": 6,
            "output_root": str(root),
            "num_channels": 8,
        },
    )
    return train_potential(cfg, progress=False)


@pytest.fixture(scope="session")
def trained_calc(trained_run):
    from matbrain.potentials.calculators import load_potential

    return load_potential(trained_run.model_path).calc
