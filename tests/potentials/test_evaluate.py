"""Per-structure errors and the force-error breakdown of ``potential eval``."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from matbrain.potentials.data import ENERGY_KEY, FORCES_KEY
from matbrain.potentials.evaluate import (
    error_metrics,
    force_error_breakdown,
    predict,
    read_structure_errors,
    worst_structures,
    write_structure_errors,
)


def _frame(seed: int, rattle: float, force_offset: float, energy_offset: float, **info):
    """An EMT-labelled Cu cell whose reference labels are off by known amounts: EMT as the
    potential then has exactly these errors (x components only for the forces)."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.rattle(rattle, seed=seed)
    atoms.calc = EMT()
    forces = atoms.get_forces()
    forces[:, 0] -= force_offset
    atoms.info[ENERGY_KEY] = atoms.get_potential_energy() - energy_offset * len(atoms)
    atoms.arrays[FORCES_KEY] = forces
    atoms.info.update(info)
    atoms.calc = None
    return atoms


def test_structure_rows_carry_each_structures_own_errors(tmp_path):
    frames = [_frame(i, 0.05, 0.03 * (i + 1), 0.002 * (i + 1), jid=f"Cu-{i}") for i in range(3)]
    pred = predict(EMT(), frames)
    rows = pred.structures
    assert [r["id"] for r in rows] == ["Cu-0", "Cu-1", "Cu-2"]
    for i, r in enumerate(rows):
        # one component of three is off by 0.03 (i + 1)
        assert r["forces_mae_eV_per_A"] == pytest.approx(0.01 * (i + 1))
        assert r["energy_error_meV_per_atom"] == pytest.approx(2.0 * (i + 1))
        reference = np.linalg.norm(frames[i].arrays[FORCES_KEY], axis=1).mean()
        assert r["mean_force_eV_per_A"] == pytest.approx(reference)
        assert r["shortest_distance_A"] == pytest.approx(
            min(frames[i].get_distance(a, b, mic=True) for a in range(8) for b in range(a))
        )
    assert [r["id"] for r in worst_structures(pred, 2)] == ["Cu-2", "Cu-1"]

    table = write_structure_errors(pred, tmp_path / "structures.csv")
    with table.open() as handle:
        saved = list(csv.DictReader(handle))
    assert [float(r["forces_mae_eV_per_A"]) for r in saved] == pytest.approx([0.01, 0.02, 0.03])


def test_saved_structure_errors_give_the_same_breakdown(tmp_path):
    frames = [_frame(i, 0.05, 0.3, 0.0, config_type="liquid") for i in range(2)]
    frames += [_frame(10 + i, 0.05, 0.03, 0.0, config_type="crystal") for i in range(3)]
    pred = predict(EMT(), frames)
    saved = read_structure_errors(write_structure_errors(pred, tmp_path / "structures.csv"))
    for read, direct in zip(force_error_breakdown(saved), force_error_breakdown(pred), strict=True):
        assert read.keys() == direct.keys()
        for key, value in direct.items():
            assert read[key] == (value if isinstance(value, str) else pytest.approx(value)), key
    assert [r["id"] for r in worst_structures(saved)] == [r["id"] for r in worst_structures(pred)]


def test_breakdown_by_config_type_adds_up_to_the_force_mae():
    frames = [_frame(i, 0.05, 0.3, 0.0, config_type="liquid") for i in range(2)]
    frames += [_frame(10 + i, 0.05, 0.03, 0.0, config_type="crystal") for i in range(6)]
    pred = predict(EMT(), frames)
    groups = {g["group"]: g for g in force_error_breakdown(pred)}
    assert set(groups) == {"liquid", "crystal"}
    assert groups["liquid"]["structures"] == 2 and groups["crystal"]["structures"] == 6
    assert groups["liquid"]["component_share"] == pytest.approx(0.25)
    assert groups["liquid"]["forces_mae_eV_per_A"] == pytest.approx(0.1)
    assert groups["crystal"]["forces_mae_eV_per_A"] == pytest.approx(0.01)
    # 2 x 0.1 against 6 x 0.01: the two liquid cells make 0.2 / 0.26 of the MAE
    assert groups["liquid"]["mae_share"] == pytest.approx(0.2 / 0.26)
    overall = error_metrics(pred)["forces_eV_per_A"]["mae"]
    assert sum(g["component_share"] * g["forces_mae_eV_per_A"] for g in groups.values()) == (
        pytest.approx(overall)
    )


def test_without_config_types_it_groups_by_mean_reference_force():
    frames = [_frame(i, 0.0, 0.0, 0.0) for i in range(2)]  # perfect crystal: no force
    frames += [_frame(5 + i, 0.2, 0.06, 0.0) for i in range(2)]  # strongly rattled
    pred = predict(EMT(), frames)
    groups = force_error_breakdown(pred)
    assert [g["grouped_by"] for g in groups] == ["mean_force", "mean_force"]
    assert groups[0]["group"] == "mean |F| < 0.1" and groups[0]["forces_mae_eV_per_A"] < 1e-9
    assert groups[1]["mean_force_eV_per_A"] > 0.1
    assert groups[1]["forces_mae_eV_per_A"] == pytest.approx(0.02)
    assert groups[1]["mae_share"] == pytest.approx(1.0)
