"""Pacemaker adapter parts: log parsing (real pacemaker output), early stopping, input, split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from matbrain.potentials.ace.config import AceTrainingConfig, write_input_yaml
from matbrain.potentials.ace.dataset import split_records, write_pacemaker_dataset
from matbrain.potentials.ace.early_stopping import EarlyStopping
from matbrain.potentials.ace.pacemaker_log import PacemakerLogParser, parse_log, read_metrics_table

PACEMAKER = Path(__file__).parent / "data" / "pacemaker"  # a real 15-iteration Cu fit


def test_log_parser_reads_train_and_validation_points():
    points = parse_log((PACEMAKER / "log.txt").read_text())
    train = [p for p in points if p.split == "train"]
    valid = [p for p in points if p.split == "valid"]
    # initial state, 15 iterations, the final state (#16)
    assert [p.iteration for p in train] == list(range(17))
    assert [p.iteration for p in valid] == [0, 5, 10, 15, 16]
    first = train[3]  # "Iteration   #3 ... RMSE Energy(low): 265.28 ... Forces(low): 384.46 meV/A"
    assert first.rmse_energy_meV_per_atom == 265.28
    assert first.rmse_forces_eV_per_A == pytest.approx(0.38446)
    assert valid[1].rmse_energy_meV_per_atom == 144.30
    assert valid[1].rmse_forces_eV_per_A == pytest.approx(0.34845)


def test_log_parser_agrees_with_the_metrics_files():
    valid = [p for p in parse_log((PACEMAKER / "log.txt").read_text()) if p.split == "valid"]
    table = read_metrics_table(PACEMAKER / "test_metrics.txt")
    assert [int(r["iter_num"]) for r in table] == [p.iteration for p in valid]
    for row, point in zip(table, valid, strict=True):
        assert row["rmse_epa"] * 1000 == pytest.approx(point.rmse_energy_meV_per_atom, abs=0.01)
        assert row["rmse_f_comp"] == pytest.approx(point.rmse_forces_eV_per_A, abs=1e-5)


def test_parser_works_line_by_line_as_the_log_grows():
    parser = PacemakerLogParser()
    got = []
    for line in (PACEMAKER / "log.txt").read_text().splitlines():
        got.extend(parser.feed(line))
    assert got == parse_log((PACEMAKER / "log.txt").read_text())


def test_early_stopping_on_rising_validation_curve():
    stopper = EarlyStopping(patience=3)
    train = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2]
    valid = [1.0, 0.7, 0.5, 0.55, 0.6, 0.65, 0.7]
    stops = []
    for i, (t, v) in enumerate(zip(train, valid, strict=True)):
        stops.append(stopper.update(i * 10, t, v))
        if stops[-1]:
            break
    assert stops == [False, False, False, False, False, True]
    assert stopper.best_iteration == 20 and "rose for 3 reports" in stopper.reason


def test_no_early_stop_while_both_fall_or_train_stalls():
    stopper = EarlyStopping(patience=2)
    assert not any(stopper.update(i, 1 / (i + 1), 1 / (i + 1)) for i in range(10))
    stalled = EarlyStopping(patience=2)
    # validation rises but training does not fall: not the overfitting signature
    assert not any(stalled.update(i, 0.5, 0.5 + 0.1 * i) for i in range(6))


def test_input_yaml_has_cutoff_and_weights(tmp_path):
    cfg = AceTrainingConfig(cutoff_A=4.5, kappa=0.7, functions_per_element=50, max_iter=123)
    path = tmp_path / "input.yaml"
    write_input_yaml(cfg, ["Cu"], "train.pckl.gzip", "valid.pckl.gzip", path)
    text = path.read_text()
    assert "cutoff: 4.5" in text
    data = yaml.safe_load(text)
    assert data["potential"]["bonds"]["ALL"]["rcut"] == 4.5
    assert data["fit"]["loss"]["kappa"] == 0.7 and data["fit"]["maxiter"] == 123
    assert data["potential"]["functions"]["number_of_functions_per_element"] == 50
    assert data["data"]["test_filename"] == "valid.pckl.gzip"
    with pytest.raises(ValueError):
        AceTrainingConfig(kappa=1.5)


def _labelled(n: int):
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=i)
        work = atoms.copy()
        work.calc = EMT()
        atoms.calc = SinglePointCalculator(atoms, energy=work.get_potential_energy(),
                                           forces=work.get_forces())  # fmt: skip
        atoms.info.update(config_type="rattled", db_id=i + 1)
        frames.append(atoms)
    return frames


def test_split_90_10_without_overlap_and_reproducible():
    frames = _labelled(100)
    train, valid = split_records(frames, 0.1, seed=3)
    ids_t = {a.info["db_id"] for a in train}
    ids_v = {a.info["db_id"] for a in valid}
    assert (len(train), len(valid)) == (90, 10) and not ids_t & ids_v
    again_t, again_v = split_records(frames, 0.1, seed=3)
    assert [a.info["db_id"] for a in again_v] == [a.info["db_id"] for a in valid]
    other = {a.info["db_id"] for a in split_records(frames, 0.1, seed=4)[1]}
    assert other != ids_v


def test_pacemaker_dataset_keeps_config_type(tmp_path):
    frames = _labelled(3)
    write_pacemaker_dataset(frames, tmp_path / "train.pckl.gzip")
    df = pd.read_pickle(tmp_path / "train.pckl.gzip", compression="gzip")
    assert list(df["config_type"]) == ["rattled"] * 3
    assert df["energy"].iloc[0] == pytest.approx(frames[0].get_potential_energy())
    assert len(df["forces"].iloc[0]) == 4
