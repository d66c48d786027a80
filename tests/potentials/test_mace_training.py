"""A MACE potential trained by mace-torch in this session: run folder, metrics, physics, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_run_folder_has_model_metrics_plots_and_registry(trained_run):
    run = trained_run.run_dir
    for name in ("mace.model", "config.yaml", "e0s.json", "data.json", "metrics.json",
                 "history.json", "summary.json", "logs/mace.log", "data/train.xyz"):  # fmt: skip
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"train", "valid", "test"}
    for split in metrics.values():
        assert set(split) == {"energy_meV_per_atom", "forces_eV_per_A", "stress_GPa"}
        assert all(np.isfinite(v["mae"]) and v["rmse"] >= v["mae"] for v in split.values())
    plots = {p.name for p in (run / "plots").glob("*.png")}
    assert {"learning_curves.png", "parity_forces_test.png", "parity_stress_valid.png"} <= plots
    n_test = json.loads((run / "data.json").read_text())["sizes"]["test"]
    assert len((run / "structures_test.csv").read_text().splitlines()) == 1 + n_test
    assert "test split:\nforce error by mean force" in trained_run.table()
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history if "train_loss" in h] == list(range(10))
    e0s = json.loads((run / "e0s.json").read_text())
    assert list(e0s) == ["Cu"]
    registry = (run.parents[1] / "potentials.jsonl").read_text().splitlines()
    entry = json.loads(registry[-1])
    assert entry["elements"] == ["Cu"] and entry["with_forces"] and entry["level"] == "smoke"


def test_training_lowers_the_force_error(trained_run):
    history = json.loads((trained_run.run_dir / "history.json").read_text())
    first, last = history[0], history[-1]
    # ten epochs on EMT Cu at lr 0.01 cut the validation force RMSE by far more than noise
    assert last["valid_rmse_f"] < 0.7 * first["valid_rmse_f"], (first, last)


def test_resume_continues_from_mace_checkpoint(cu_xyz, tmp_path):
    from matbrain.potentials.config import resolve_mace_config
    from matbrain.potentials.pipeline import latest_unfinished_potential_run, train_potential

    base = {"data": str(cu_xyz), "output_root": str(tmp_path), "num_channels": 8, "epochs": 2}
    first = train_potential(resolve_mace_config("smoke", overrides=base), progress=False)
    (first.run_dir / "summary.json").unlink()  # as if it had stopped before finishing
    assert latest_unfinished_potential_run(tmp_path, "mace") == first.run_dir
    cfg = resolve_mace_config("smoke", overrides={**base, "epochs": 4})
    train_potential(cfg, run_dir=first.run_dir, progress=False)
    log = (first.run_dir / "logs" / "mace.log").read_text()
    assert "Loading checkpoint" in log
    history = json.loads((first.run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history if "train_loss" in h] == [0, 1, 2, 3]
    # more epochs may continue a run; any other change is refused, naming the key
    (first.run_dir / "summary.json").unlink()
    changed = resolve_mace_config("smoke", overrides={**base, "epochs": 4, "lr": 0.5})
    with pytest.raises(ValueError, match=r"changed: lr: 0\.001 -> 0\.5"):
        train_potential(changed, run_dir=first.run_dir, progress=False)
    assert "lr: 0.001" in (first.run_dir / "config.yaml").read_text()  # not overwritten


def test_training_without_prepare_needs_a_prepared_folder(cu_xyz, tmp_path):
    from matbrain.potentials.config import resolve_mace_config
    from matbrain.potentials.pipeline import train_potential

    cfg = resolve_mace_config(
        "smoke", overrides={"data": str(cu_xyz), "output_root": str(tmp_path)}
    )
    with pytest.raises(ValueError, match="--prepare-data"):
        train_potential(cfg, prepare=False, progress=False)


def test_mace_log_is_written_as_training_goes(tmp_path):
    # the per-epoch lines must be in logs/mace.log while MACE runs, not only at its end
    import sys

    from matbrain.potentials.mace_runner import run_mace

    script = (
        "import time\n"
        "for i in range(3):\n"
        "    print(f'INFO: Epoch {i}: loss=0.{9 - i}', flush=True)\n"
        "    time.sleep(0.2)\n"
    )
    log = tmp_path / "mace.log"
    seen = []

    def on_epoch(epoch: int, loss: float) -> None:
        seen.append((epoch, f"Epoch {epoch}:" in log.read_text()))

    run_mace([], log, on_epoch, command=[sys.executable, "-c", script])
    assert seen == [(0, True), (1, True), (2, True)]
