"""Oracles and parallel labelling (EMT stands in for DFT in unit tests; GPAW when installed)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from matbrain.active.labelling import label_pending
from matbrain.active.oracles import OracleError, make_oracle
from matbrain.active.store import LabelStore


def test_oracle_registry_and_settings():
    with pytest.raises(ValueError, match="valid: gpaw, espresso, cp2k, emt"):
        make_oracle("vasp")
    with pytest.raises(ValueError, match="cutof_eV"):
        make_oracle("gpaw", {"cutof_eV": 500})  # typo: unknown keys are refused
    oracle = make_oracle("gpaw", {"cutoff_eV": 600})
    assert oracle.describe()["settings"]["cutoff_eV"] == 600


def test_emt_refuses_elements_it_does_not_know():
    with pytest.raises(OracleError, match="no parameters for Si"):
        make_oracle("emt").label(bulk("Si", "diamond", a=5.43))


def _rattled_cu_store(url: str, n: int) -> LabelStore:
    store = LabelStore(url)
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=i)
        store.add(atoms, config_type="rattled")
    return store


def test_labelling_on_a_two_worker_dask_cluster_labels_every_row_once(tmp_path):
    url = str(tmp_path / "al.db")
    store = _rattled_cu_store(url, 10)
    lines: list[str] = []
    report = label_pending(url, "emt", workers=2, executor="dask", echo=lines.append)
    assert (report.completed, report.failed) == (10, 0)
    assert store.counts() == {"pending": 0, "running": 0, "completed": 10, "failed": 0}
    rows = list(store.db.select(status="completed"))
    assert all(row.attempts == 1 for row in rows)  # each claimed and labelled exactly once
    assert lines and lines[0].startswith("Dask dashboard: http")
    with pytest.raises(ValueError, match="unknown executor 'ray'; valid: local, dask"):
        label_pending(url, "emt", executor="ray")


def test_parallel_labelling_fails_bad_rows_and_goes_on(tmp_path):
    url = str(tmp_path / "al.db")
    store = _rattled_cu_store(url, 6)
    store.add(bulk("Si", "diamond", a=5.43))  # EMT cannot label this one
    report = label_pending(url, "emt", workers=2)
    assert (report.completed, report.failed) == (6, 1)
    assert store.counts() == {"pending": 0, "running": 0, "completed": 6, "failed": 1}
    assert "no parameters for Si" in store.failures()[0][1]
    first = store.completed()[0]
    reference = first.copy()
    reference.calc = EMT()
    np.testing.assert_allclose(first.get_forces(), reference.get_forces())
    assert first.info["oracle"] == "emt"
    # --retry-failed gives the failed row another try; it fails again, nothing labelled is touched
    from typer.testing import CliRunner

    from matbrain.cli.main import app

    result = CliRunner().invoke(
        app, ["db", "label", "--db", url, "--oracle", "emt", "--retry-failed"]
    )
    assert result.exit_code == 0, result.output
    assert "1 failed structures back to pending" in result.output and "failed 1" in result.output
    assert store.counts() == {"pending": 0, "running": 0, "completed": 6, "failed": 1}


@pytest.mark.skipif(importlib.util.find_spec("gpaw") is None, reason="GPAW is not installed")
def test_gpaw_single_point_on_si2():
    oracle = make_oracle("gpaw", {"cutoff_eV": 250, "kpoint_density_per_A": 2.0})
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.positions[1] += [0.05, 0.0, 0.0]
    labels = oracle.label(atoms)
    assert np.isfinite(labels.energy) and labels.forces.shape == (2, 3)
    assert labels.stress is not None and labels.stress.shape == (6,)
    assert abs(labels.forces.sum(axis=0)).max() < 1e-2  # no net force
